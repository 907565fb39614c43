// The restore refuses what it must not write, and then leaves nothing: hostile archives (traversal,
// absolute paths, escaping symlinks, truncation, zip bombs), rows that are not success, objects that
// are not the archive the row recorded. Each case: a clear error, and no destination, no temp dir.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import zlib from 'node:zlib'
import { tarOf, zipOf } from '../harness/archives.js'
import { errorsOf, insertRow, restoreHook, restoreInputs } from '../harness/backup-job.js'
import { services } from '../harness/services.js'

const svc = await services()
const bucket = await svc.newBucket('refusals')
const scratch = await mkdtemp(path.join(os.tmpdir(), 'restore-refusals-'))
after(async () => {
  await rm(scratch, { recursive: true, force: true })
  await svc.end()
})

const MiB = 1024 * 1024
const good = await tarOf([
  { name: 'data', dir: true },
  { name: 'data/notes.txt', content: 'hello\n' }
])

/** Puts the archive in the store with a success row pointing at it, as a finished backup would leave it. */
async function storedBackup(
  body: Buffer,
  row: { size_bytes?: number; status?: 'success' | 'failed' | 'in_progress' } = {},
  metadata?: Record<string, string>
): Promise<string> {
  const key = `backups/hostile/${randomUUID()}.bin`
  await svc.s3.putObject(bucket, key, body, metadata ? { Metadata: metadata } : {})
  const status = row.status ?? 'success'
  const inserted = await insertRow(svc, {
    status,
    ...(status === 'success' ? { s3_key: key, size_bytes: row.size_bytes ?? body.length } : {}),
    ...(status === 'failed' ? { error_text: 'The store refused the upload: access denied.' } : {})
  })
  return inserted.id
}

/** Restores into a fresh `.../case/<name>/restored`; asserts the step failed and nothing is left in `case/<name>`. */
async function refusedRestore(backupId: string, name: string, inputs: Record<string, string> = {}): Promise<string> {
  const parent = path.join(scratch, name, 'inside')
  const destination = path.join(parent, 'restored')
  const result = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backupId, path: destination, ...inputs }))
  assert.equal(result.conclusion, 'failure', result.stdout)
  // Neither the destination, nor a temp dir, nor the parents the restore made, nor anything written outside.
  await assert.rejects(access(path.join(scratch, name)), { code: 'ENOENT' }, `${name}: something was left behind`)
  return errorsOf(result)
}

describe('restore refuses', () => {
  it('an entry that climbs out with ..', async () => {
    const archive = await tarOf([
      { name: 'data/ok.txt', content: 'fine\n' },
      { name: '../../escaped.txt', content: 'pwned\n' }
    ])
    assert.match(
      await refusedRestore(await storedBackup(archive), 'traversal'),
      /entry "..\/..\/escaped.txt" escapes the destination; refusing the archive/
    )
    await assert.rejects(access(path.join(scratch, 'escaped.txt')))
  })

  it('an entry with an absolute path', async () => {
    const archive = await tarOf([{ name: `/${path.join(scratch, 'absolute.txt').slice(1)}`, content: 'pwned\n' }])
    assert.match(await refusedRestore(await storedBackup(archive), 'absolute'), /is an absolute path; refusing the archive/)
    await assert.rejects(access(path.join(scratch, 'absolute.txt')))
  })

  it('a zip entry that climbs out with ..', async () => {
    const archive = zipOf([{ name: '../zip-slip.txt', content: Buffer.from('pwned\n') }])
    assert.match(await refusedRestore(await storedBackup(archive), 'zip-slip'), /entry "..\/zip-slip.txt" escapes the destination/)
  })

  it('a symlink pointing outside, and a write through it', async () => {
    const outside = path.join(scratch, 'outside')
    await mkdir(outside, { recursive: true })
    const archive = await tarOf([
      { name: 'data/link', symlink: '../../../../outside' },
      { name: 'data/link/planted.txt', content: 'pwned\n' }
    ])
    assert.match(
      await refusedRestore(await storedBackup(archive), 'symlink-escape'),
      /symlink "data\/link" points to "..\/..\/..\/..\/outside", outside the destination/
    )
    // A link that stays inside, then a write through it: refused for the write.
    const through = await tarOf([
      { name: 'data/sub', dir: true },
      { name: 'data/link', symlink: 'sub' },
      { name: 'data/link/planted.txt', content: 'pwned\n' }
    ])
    assert.match(await refusedRestore(await storedBackup(through), 'write-through'), /lies below "data\/link", which is a symlink/)
    assert.deepEqual(await readdir(outside), [])
  })

  it('a truncated archive', async () => {
    const whole = zlib.gzipSync(await tarOf([{ name: 'data/big.bin', content: randomBytes(256 * 1024) }]))
    const cut = whole.subarray(0, Math.floor(whole.length / 2))
    assert.match(await refusedRestore(await storedBackup(cut), 'truncated-gzip'), /truncated or corrupt/)
    const tarCut = (await tarOf([{ name: 'data/big.bin', content: Buffer.alloc(64 * 1024, 7) }])).subarray(0, 20_000)
    assert.match(
      await refusedRestore(await storedBackup(tarCut), 'truncated-tar'),
      /ends in the middle of the content of the tar entry "data\/big.bin"/
    )
    const zipCut = zipOf([{ name: 'data/a.txt', content: Buffer.from('a'.repeat(1000)) }]).subarray(0, 60)
    assert.match(await refusedRestore(await storedBackup(zipCut), 'truncated-zip'), /no end of central directory record/)
  })

  it('a zip bomb over max-ratio, before writing a byte', async () => {
    const bomb = zipOf([{ name: 'zeros.bin', content: Buffer.alloc(64 * MiB) }])
    assert.ok((64 * MiB) / bomb.length > 1000, `ratio ${(64 * MiB) / bomb.length}`)
    assert.match(await refusedRestore(await storedBackup(bomb), 'zip-bomb'), /over 1000 times its own \d+ bytes \('max-ratio'\)/)
    // A zip whose central directory lies about the size is caught while inflating.
    const liar = zipOf([{ name: 'zeros.bin', content: Buffer.alloc(MiB), declaredSize: 1000 }])
    assert.match(
      await refusedRestore(await storedBackup(liar), 'zip-liar'),
      /expands to more than the 1000 bytes the central directory declares/
    )
    // tar.zst of zeros, and max-size.
    const zst = zlib.zstdCompressSync(await tarOf([{ name: 'zeros.bin', content: Buffer.alloc(32 * MiB) }]))
    assert.match(await refusedRestore(await storedBackup(zst), 'zstd-bomb'), /'max-ratio'/)
    const fourKiB = await tarOf([{ name: 'data/4k.bin', content: randomBytes(4096) }])
    assert.match(
      await refusedRestore(await storedBackup(fourKiB), 'max-size', { 'max-size': '1KiB' }),
      /more than 1024 bytes: over the 'max-size' limit/
    )
  })

  it('a row that is not success', async () => {
    const failed = await storedBackup(good, { status: 'failed' })
    assert.match(
      await refusedRestore(failed, 'failed-row'),
      /has status failed, so there is no archive to restore: it failed: The store refused the upload: access denied\./
    )
    const running = await storedBackup(good, { status: 'in_progress' })
    assert.match(
      await refusedRestore(running, 'running-row'),
      /has status in_progress, so there is no archive to restore: it is still in_progress/
    )
    assert.match(await refusedRestore(randomUUID(), 'no-row'), /No backup_history row has id/)
  })

  it('an object whose size or SHA-256 is not what was recorded', async () => {
    const wrongSize = await storedBackup(good, { size_bytes: good.length + 1 })
    assert.match(
      await refusedRestore(wrongSize, 'wrong-size'),
      new RegExp(`has ${good.length} bytes but backup ${wrongSize} recorded ${good.length + 1}`)
    )
    const zip = zipOf([{ name: 'data/a.txt', content: Buffer.from('some content that deflates\n'.repeat(50)) }])
    zip[40] = (zip[40] ?? 0) ^ 0xff
    assert.match(
      await refusedRestore(await storedBackup(zip), 'flipped-byte'),
      /The zip is corrupt: the zip entry "data\/a.txt" (fails its CRC check|does not inflate)/
    )
    const wrongDigest = await storedBackup(good, {}, { sha256: '0'.repeat(64) })
    assert.match(
      await refusedRestore(wrongDigest, 'wrong-sha256'),
      /has SHA-256 [0-9a-f]{64} but the object's sha256 metadata records 0{64}: the object changed after it was backed up; nothing was restored/
    )
  })

  it('a destination that is not empty, naming the input', async () => {
    const occupied = path.join(scratch, 'occupied')
    await mkdir(occupied, { recursive: true })
    await writeFile(path.join(occupied, 'keep.txt'), 'mine\n')
    const result = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': await storedBackup(good), path: occupied }))
    assert.equal(result.conclusion, 'failure')
    assert.match(errorsOf(result), /Input 'path': .*occupied already exists and is not empty/)
    assert.deepEqual(await readdir(occupied), ['keep.txt'])
  })

  it('inputs that do not name exactly one backup', async () => {
    const both = await restoreHook(
      svc,
      restoreInputs(svc, bucket, { 'backup-id': randomUUID(), 's3-key': 'x.zip', path: path.join(scratch, 'x') })
    )
    assert.match(errorsOf(both), /Input 's3-key': cannot be combined with 'backup-id'/)
    const none = await restoreHook(svc, restoreInputs(svc, bucket, { path: path.join(scratch, 'x') }))
    assert.match(errorsOf(none), /Input 'backup-id': is required: set exactly one of/)
  })
})
