// The reference age implementation (Debian's `age` package, installed by scripts/test.sh): what a
// person decrypting a backup on their machine runs, so the action's files are checked against it.
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const scratch = await mkdtemp(path.join(os.tmpdir(), 'age-'))
after(() => rm(scratch, { recursive: true, force: true }))
let made = 0

export interface AgeKey {
  /** The key file `age-keygen` wrote: comments and the AGE-SECRET-KEY-1… line (what `decrypt-identity` takes). */
  identityFile: string
  identity: string
  /** Its public key, age1… (what `encrypt-to` takes). */
  recipient: string
}

/** A new key pair, made by `age-keygen`. */
export async function ageKeygen(): Promise<AgeKey> {
  const identityFile = path.join(scratch, `key-${(made += 1)}.txt`)
  await run('age-keygen', ['-o', identityFile])
  const identity = await readFile(identityFile, 'utf8')
  const recipient = /# public key: (age1[a-z0-9]+)/.exec(identity)?.[1] ?? ''
  return { identityFile, identity, recipient }
}

/** `age -d -i key.txt`: the plaintext, or the tool's error. */
export async function ageDecrypt(encrypted: Buffer, key: AgeKey): Promise<Buffer> {
  const input = path.join(scratch, `in-${(made += 1)}.age`)
  await writeFile(input, encrypted)
  const { stdout } = await run('age', ['-d', '-i', key.identityFile, input], { encoding: 'buffer', maxBuffer: 1024 ** 3 })
  return stdout
}

/** `age -r <recipient>…` of `plain`. */
export async function ageEncrypt(plain: Buffer, recipients: readonly string[]): Promise<Buffer> {
  const input = path.join(scratch, `plain-${(made += 1)}`)
  const output = `${input}.age`
  await writeFile(input, plain)
  await run('age', [...recipients.flatMap(recipient => ['-r', recipient]), '-o', output, input])
  return readFile(output)
}

/**
 * `age -d` of a passphrase-encrypted file. age reads a passphrase only from a terminal, so it runs
 * under `script`'s pseudo-terminal, answered once it asks.
 */
export async function ageDecryptWithPassphrase(encrypted: Buffer, passphrase: string): Promise<Buffer> {
  const input = path.join(scratch, `in-${(made += 1)}.age`)
  const output = `${input}.out`
  await writeFile(input, encrypted)
  const child = spawn('script', ['-qec', `age -d -o ${output} ${input}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let seen = ''
  child.stdout.on('data', (piece: Buffer) => {
    seen += piece.toString()
    if (seen.includes('passphrase') && !child.stdin.writableEnded) child.stdin.end(`${passphrase}\n`)
  })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  if (code !== 0) throw new Error(`age -d with a passphrase exited ${code}: ${seen}`)
  return readFile(output)
}
