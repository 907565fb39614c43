// Backups encrypted with age (`encrypt-to`, `encrypt-passphrase`) restore byte for byte with the
// matching identity or passphrase, in every format; and they are standard age files: the
// reference `age` decrypts what the action wrote, and the restore decrypts what `age` wrote.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { ageDecrypt, ageDecryptWithPassphrase, ageEncrypt, ageKeygen } from '../harness/age.js'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { listTree, randomBytesSeeded } from '../harness/workspace.js'

const run = promisify(execFile)
const MiB = 1024 * 1024
const { svc, bucket, workspace } = await setUpTestFile('encrypted', {
  'data/notes.txt': 'hello\n',
  'data/empty.bin': '',
  // Several 64 KiB age chunks, compressible and not.
  'data/random.bin': { size: 2 * MiB + 3 },
  'data/text.log': Buffer.from(randomBytesSeeded(20, MiB).toString('hex')),
  'data/sub/link': { symlink: '../notes.txt' }
})
const scratch = await mkdtemp(path.join(os.tmpdir(), 'encrypted-round-trip-'))
after(() => rm(scratch, { recursive: true, force: true }))
const alice = await ageKeygen()
const bob = await ageKeygen()
const PASSPHRASE = 'correct horse battery staple'

interface Encrypted {
  rowId: string
  key: string
  sha256: string
  plaintextSha256: string
}

async function encryptedBackup(inputs: Record<string, string>): Promise<Encrypted> {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...inputs })
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  const stored = await readRow(svc, row.id)
  assert.equal(stored.status, 'success')
  assert.match(job.main.summary, /Encrypted.*age, to (1 recipient|\d+ recipients|a passphrase)/s)
  assert.match(job.main.summary, new RegExp(`Archive SHA-256.*${job.main.outputs['plaintext-sha256']} \\(before encryption\\)`, 's'))
  return {
    rowId: row.id,
    key: stored.s3_key ?? '',
    sha256: job.main.outputs.sha256 ?? '',
    plaintextSha256: job.main.outputs['plaintext-sha256'] ?? ''
  }
}

async function restored(backup: Encrypted, name: string, inputs: Record<string, string>): Promise<string> {
  const destination = path.join(scratch, name)
  const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backup.rowId, path: destination, ...inputs }))
  assert.equal(restore.conclusion, 'success', restore.stdout)
  assert.equal(restore.outputs.sha256, backup.sha256)
  assert.equal(restore.outputs['plaintext-sha256'], backup.plaintextSha256)
  assert.match(restore.summary, /Archive SHA-256/)
  return destination
}

async function assertSameTree(destination: string): Promise<void> {
  assert.deepEqual(await listTree(path.join(destination, 'data')), await listTree(path.join(workspace.dir, 'data')))
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

describe('encrypted backups', () => {
  for (const format of ['zip', 'tar', 'tar.gz', 'tar.zst'] as const) {
    it(`${format} to one recipient: an age file the reference age opens, restored with its identity`, async () => {
      const backup = await encryptedBackup({ format, 'encrypt-to': alice.recipient })
      assert.ok(backup.key.endsWith(`.${format}.age`), backup.key)
      const object = await svc.s3.getObject(bucket, backup.key)
      assert.equal(sha256(object), backup.sha256, "the row's sha256 is the stored object's")
      assert.equal((await svc.s3.headObject(bucket, backup.key)).ContentType, 'application/octet-stream')
      assert.equal(object.includes(Buffer.from('hello\n')), false, 'the plaintext shows through')
      const plain = await ageDecrypt(object, alice)
      assert.equal(sha256(plain), backup.plaintextSha256)
      await assertSameTree(await restored(backup, format, { 'decrypt-identity': alice.identity }))
    })
  }

  it('`age -d | tar -x --zstd` restores a tar.zst backup without the action', async () => {
    const backup = await encryptedBackup({ format: 'tar.zst', 'encrypt-to': alice.recipient })
    const file = path.join(scratch, 'by-hand.tar.zst.age')
    await writeFile(file, await svc.s3.getObject(bucket, backup.key))
    const destination = path.join(scratch, 'by-hand')
    await mkdir(destination)
    await run('sh', ['-c', `age -d -i "${alice.identityFile}" "${file}" | tar -x --zstd -C "${destination}"`])
    await assertSameTree(destination)
  })

  it('two recipients: either identity decrypts, and a key file with both identities too', async () => {
    const backup = await encryptedBackup({ format: 'tar.gz', 'encrypt-to': `# the team\n${alice.recipient}\n\n${bob.recipient}\n` })
    assert.equal(sha256(await ageDecrypt(await svc.s3.getObject(bucket, backup.key), bob)), backup.plaintextSha256)
    await assertSameTree(await restored(backup, 'by-bob', { 'decrypt-identity': bob.identity }))
    await assertSameTree(await restored(backup, 'by-either', { 'decrypt-identity': `${bob.identity}\n${alice.identity}` }))
  })

  it('a passphrase: restored with it, and opened by the reference age', async () => {
    const backup = await encryptedBackup({ format: 'zip', 'encrypt-passphrase': PASSPHRASE })
    const object = await svc.s3.getObject(bucket, backup.key)
    assert.match(object.subarray(0, 100).toString('latin1'), /^age-encryption\.org\/v1\n-> scrypt /)
    assert.equal(sha256(await ageDecryptWithPassphrase(object, PASSPHRASE)), backup.plaintextSha256)
    await assertSameTree(await restored(backup, 'by-passphrase', { 'decrypt-passphrase': PASSPHRASE }))
  })

  it('an object the reference age encrypted (tar | zstd | age) restores by s3-key', async () => {
    const archive = path.join(scratch, 'by-age.tar.zst')
    await run('sh', ['-c', `tar -c -C "${workspace.dir}" data | zstd -q -3 -o "${archive}"`])
    const encrypted = await ageEncrypt(await readFile(archive), [bob.recipient, alice.recipient])
    const key = 'by-hand/backup.tar.zst.age'
    await svc.s3.putObject(bucket, key, encrypted)
    const destination = path.join(scratch, 'from-age')
    const inputs = restoreInputs(svc, bucket, { 's3-key': key, path: destination, 'decrypt-identity': alice.identity })
    for (const name of ['supabase-url', 'supabase-key']) delete inputs[name]
    const restore = await restoreHook(svc, inputs)
    assert.equal(restore.conclusion, 'success', restore.stdout)
    assert.equal(restore.outputs.sha256, sha256(encrypted))
    await assertSameTree(destination)
  })

  it('verify: download reads the encrypted object back without decrypting it', async () => {
    const backup = await encryptedBackup({ format: 'tar.zst', 'encrypt-to': alice.recipient, verify: 'download' })
    assert.equal(sha256(await svc.s3.getObject(bucket, backup.key)), backup.sha256)
  })

  it('a wrong identity, or none, fails with a clear sentence and writes nothing', async () => {
    const backup = await encryptedBackup({ format: 'tar.zst', 'encrypt-to': alice.recipient })
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        'wrong-identity',
        { 'decrypt-identity': bob.identity },
        /None of the 1 identity in 'decrypt-identity' \(age1\w+\) can open .*nothing was restored/
      ],
      ['no-identity', {}, /is encrypted with age: set 'decrypt-identity'/],
      [
        'passphrase-for-recipients',
        { 'decrypt-passphrase': PASSPHRASE },
        /not with a passphrase: decrypting it needs one of their identities/
      ]
    ]
    for (const [name, inputs, message] of cases) {
      const destination = path.join(scratch, name)
      const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backup.rowId, path: destination, ...inputs }))
      assert.equal(restore.conclusion, 'failure', `${name}: ${restore.stdout}`)
      assert.match(errorsOf(restore), message, name)
      await assert.rejects(access(destination), { code: 'ENOENT' }, `${name}: something was written`)
    }
    const wrongPassphrase = await encryptedBackup({ format: 'tar', 'encrypt-passphrase': PASSPHRASE })
    const restore = await restoreHook(
      svc,
      restoreInputs(svc, bucket, {
        'backup-id': wrongPassphrase.rowId,
        path: path.join(scratch, 'wrong-passphrase'),
        'decrypt-passphrase': `${PASSPHRASE}!`
      })
    )
    assert.match(errorsOf(restore), /'decrypt-passphrase' does not open .*nothing was restored/)
  })
})
