// Past the classic limits: a file over 4 GiB (sparse, so it costs no disk) and more than 65 535
// entries, read back by the system tools. The zip takes the Zip64 paths; tar a size over 8 digits.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { archiveStream } from '../harness/archive-stream.js'
import { collectEntries } from '../../src/sources/files/collect.js'
import { listTree } from '../harness/workspace.js'

const run = promisify(execFile)
const BIG = 4 * 1024 ** 3 + 12_345
const MANY = 66_000

let scratch: string
let workspace: string

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'archive-large-'))
  workspace = path.join(scratch, 'workspace')
  await mkdir(path.join(workspace, 'big'), { recursive: true })
  const file = await open(path.join(workspace, 'big/sparse.bin'), 'w')
  await file.truncate(BIG)
  await file.write('head', 0)
  await file.write('tail', BIG - 4)
  await file.close()
  for (let dir = 0; dir < MANY / 1000; dir++) {
    await mkdir(path.join(workspace, `many/${dir}`), { recursive: true })
    await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(path.join(workspace, `many/${dir}/${i}.txt`), `${dir}/${i}\n`)))
  }
})
after(() => rm(scratch, { recursive: true, force: true }))

/** stdout of `command`, fed the archive of `patterns` as stdin. */
async function readArchiveWith(patterns: string[], format: 'tar', command: string): Promise<string> {
  const entries = await collectEntries(patterns, { workspace, includeHiddenFiles: false })
  const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  const exited = new Promise<number | null>(resolve => child.on('close', resolve))
  await pipeline(archiveStream(entries, format, undefined), child.stdin)
  assert.equal(await exited, 0)
  return stdout
}

describe('large archives', () => {
  it('zips a file over 4 GiB with Zip64 sizes that unzip verifies', async () => {
    const entries = await collectEntries(['big'], { workspace, includeHiddenFiles: false })
    const archive = path.join(scratch, 'big.zip')
    // Level 1: the format is what is tested here, and it deflates 4 GiB fastest.
    await pipeline(archiveStream(entries, 'zip', 1), createWriteStream(archive))
    await run('unzip', ['-tq', archive]) // inflates the whole entry and checks its CRC-32 and size
    const { stdout } = await run('zipinfo', ['-l', archive, 'big/sparse.bin'])
    assert.match(stdout, new RegExp(`\\s${BIG}\\s`))
    const { stdout: ends } = await run('sh', [
      '-c',
      `unzip -p '${archive}' big/sparse.bin | tail -c 4; unzip -p '${archive}' big/sparse.bin | head -c 4`
    ])
    assert.equal(ends, 'tailhead')
  })

  it('tars a file over 4 GiB with its exact size', async () => {
    const listing = await readArchiveWith(['big'], 'tar', 'tar -tvf -')
    assert.match(listing, new RegExp(`\\s${BIG}\\s.*big/sparse\\.bin`))
  })

  it(`zips ${MANY} entries with Zip64 end records, and unzip restores every one`, async () => {
    const entries = await collectEntries(['many'], { workspace, includeHiddenFiles: false })
    assert.ok(entries.length > 65_535)
    const archive = path.join(scratch, 'many.zip')
    await pipeline(archiveStream(entries, 'zip', undefined), createWriteStream(archive))
    const into = path.join(scratch, 'many-out')
    await mkdir(into)
    await run('unzip', ['-q', archive, '-d', into], { maxBuffer: 1024 * 1024 })
    const [expected, actual] = await Promise.all([listTree(path.join(workspace, 'many')), listTree(path.join(into, 'many'))])
    assert.equal(actual.size, expected.size)
    assert.deepEqual(actual, expected)
  })
})
