// verify: what the store holds is the archive this run built. The upload sends a CRC32 per part and the
// FULL_OBJECT CRC32 at completion; HeadObject must report that CRC32 back; `download` reads the object
// back and compares its SHA-256; the row records the archive's SHA-256. A store that damages a part,
// reports another checksum or holds other bytes fails the row with a message saying so.
import assert from 'node:assert/strict'
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { it } from 'node:test'
import zlib from 'node:zlib'
import {
  LEDGER_MODES,
  actionInputs,
  backupHook,
  backupJob,
  errorsOf,
  insertRow,
  readRow,
  setUpTestFile,
  whileRecording
} from '../harness/backup-job.js'
import type { S3Fault } from '../harness/services.js'
import { VerificationError } from '../../src/errors.js'
import { headObject } from '../../src/store/s3.js'
import { verifyByDownload } from '../../src/store/verify.js'

const MiB = 1024 * 1024
// Three parts: the CRC32 is chained over parts, and the multipart ETag has three part MD5s.
const { svc, bucket, workspace } = await setUpTestFile('verify', { 'data/big.bin': { size: 18 * MiB }, 'data/notes.txt': 'notes\n' })

const crc32Of = (bytes: Buffer): string => {
  const value = Buffer.alloc(4)
  value.writeUInt32BE(zlib.crc32(bytes))
  return value.toString('base64')
}

/** One backup with `verify` (and a store fault armed first); the row and the job as they ended. */
async function backup(verify: string | undefined, fault?: S3Fault, mode: (typeof LEDGER_MODES)[number] = 'table') {
  const row = await insertRow(svc)
  if (fault) await svc.s3.faults(fault)
  await svc.s3.resetStats()
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, 'compression-level': '0', ...(verify ? { verify } : {}) }, mode)
  })
  return { job, row: await readRow(svc, row.id), stats: await svc.s3.stats() }
}

for (const mode of LEDGER_MODES) {
  it(`${mode}: verify checksum (the default): the row records the archive's SHA-256, and the store keeps its full-object CRC32`, async () => {
    const { job, row, stats } = await backup(undefined, undefined, mode)
    assert.equal(job.main.exitCode, 0, job.main.stdout)
    assert.equal(row.status, 'success')
    const body = await svc.s3.getObject(bucket, row.s3_key ?? '')
    const sha256 = createHash('sha256').update(body).digest('hex')
    assert.equal(row.sha256, sha256)
    assert.equal(job.main.outputs.sha256, sha256)
    assert.match(job.main.summary, new RegExp(sha256))
    // Every part carried its CRC32, checked by the store; so, even over plain http, no part's SHA-256
    // was signed (UNSIGNED-PAYLOAD): the store hashes each byte once less, and so does the action.
    assert.ok(stats.parts >= 3)
    assert.equal(stats.checksummed, stats.parts)
    assert.equal(stats.signed, 0)
    const head = await svc.s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: row.s3_key ?? '', ChecksumMode: 'ENABLED' }))
    assert.equal(head.ChecksumCRC32, crc32Of(body))
    assert.equal(head.ChecksumType, 'FULL_OBJECT')
    assert.match(job.main.stdout, /verified \(checksum\): size \d+ bytes, ETag, CRC32\./)
  })
}

it('a part damaged on the way is refused by the store (BadDigest): the row fails saying so, and nothing is left', async () => {
  const { job, row } = await backup('checksum', { mode: 'corrupt-part', op: 'UploadPart', count: 1 })
  assert.equal(job.main.exitCode, 1)
  assert.equal(row.status, 'failed')
  assert.match(row.error_text ?? '', /the store received other bytes than were sent .* damaged on the way\. Nothing was stored; re-run/)
  assert.match(errorsOf(job.main), /damaged on the way/)
  assert.equal(row.sha256, null)
  assert.deepEqual(await svc.s3.openUploads(bucket), [])
})

it('verify none over plain http: each part is signed with its SHA-256, so a part damaged on the way is still refused', async () => {
  const sent = await backup('none')
  assert.equal(sent.row.status, 'success')
  assert.ok(sent.stats.parts >= 3)
  assert.equal(sent.stats.signed, sent.stats.parts)
  const { job, row } = await backup('none', { mode: 'corrupt-part', op: 'UploadPart', count: 1 })
  assert.equal(job.main.exitCode, 1)
  assert.equal(row.status, 'failed')
  assert.match(row.error_text ?? '', /the store received other bytes than were sent .*x-amz-content-sha256.* damaged on the way/)
  assert.deepEqual(await svc.s3.openUploads(bucket), [])
})

it('a store that reports another CRC32 than the archive has: the row fails, naming both', async () => {
  const { job, row } = await backup('checksum', { mode: 'wrong-checksum', op: 'HeadObject' })
  assert.equal(job.main.exitCode, 1)
  assert.equal(row.status, 'failed')
  assert.match(row.error_text ?? '', /has CRC32 checksum \S+ in the store, but the uploaded archive's is \S+; the store holds other bytes/)
})

it('verify download: an object damaged in the store after completion fails the row; verify checksum cannot see that damage', async () => {
  const damaged = { mode: 'corrupt-object', op: 'CompleteMultipartUpload', count: 1 } as const
  const downloaded = await backup('download', damaged)
  assert.equal(downloaded.job.main.exitCode, 1)
  assert.equal(downloaded.row.status, 'failed')
  assert.match(
    downloaded.row.error_text ?? '',
    /Read back, \S+ (has .* with SHA-256 [0-9a-f]{64}, but the uploaded archive has|does not read as the archive that was uploaded).*damaged or other bytes/
  )

  // The store's own checksum was computed before the damage: HeadObject still agrees.
  const checked = await backup('checksum', { ...damaged })
  assert.equal(checked.row.status, 'success', checked.row.error_text ?? '')
})

it('verify download: the object read back is the archive, and the row ends success', async () => {
  const { job, row } = await backup('download')
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal(row.status, 'success')
  assert.match(job.main.stdout, /verified \(download\): .*SHA-256 of the object read back/)
  assert.equal(
    row.sha256,
    createHash('sha256')
      .update(await svc.s3.getObject(bucket, row.s3_key ?? ''))
      .digest('hex')
  )
})

it('verify none: no checksums are sent, the object is checked by size, and the SHA-256 is still recorded', async () => {
  const { job, row, stats } = await backup('none')
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal(row.status, 'success')
  assert.equal(stats.checksummed, 0)
  assert.match(row.sha256 ?? '', /^[0-9a-f]{64}$/)
  assert.match(job.main.stdout, /verified \(none\): size \d+ bytes\./)
})

it('a store that ignores S3 additional checksums: accepted, verified by size and ETag, and the log says so', async () => {
  const { job, row, stats } = await backup('checksum', { mode: 'no-checksums' })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal(row.status, 'success')
  assert.match(job.main.stdout, /keeps no CRC32 checksum/)
  // Each part's Content-MD5 is what the store checks then: the payload goes unsigned.
  assert.equal(stats.signed, 0)
})

it('a store that refuses the checksum headers: the upload goes on without them, with a warning', async () => {
  const { job, row, stats } = await backup('checksum', { mode: 'reject-checksums' })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal(row.status, 'success')
  assert.equal(stats.checksummed, 0)
  assert.match(job.main.stdout, /::warning.*refused S3's additional checksums/)
})

it('verify download after main was killed before recording: post reads the object back and records success with the SHA-256', async () => {
  const row = await insertRow(svc)
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, verify: 'download' })
  const main = await backupHook(svc, { workspace: workspace.dir, inputs, killAt: whileRecording(svc) })
  assert.equal(main.signal, 'SIGKILL')
  await svc.clearFaults()
  const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
  assert.equal(post.exitCode, 0, post.stdout)
  assert.match(post.stdout, /verified \(download\)/)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success')
  assert.equal(finished.sha256, main.state.SUPABASE_S3_BACKUP_SHA256)
})

it('a table from before migration 009 (no sha256 column): the verified backup is still recorded, and the log says what to apply', async () => {
  const table = 'backup_history_before_009'
  await svc.sql(`create table if not exists public.${table} (like public.backup_history including all)`)
  await svc.sql(`alter table public.${table} drop column if exists sha256 cascade`)
  const row = await insertRow(svc, {}, table)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, table })
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal((await readRow(svc, row.id, table)).status, 'success')
  assert.match(job.main.stdout, /cannot take the archive's sha256 .* Apply supabase\/migrations\/009_add_sha256_to_backup_history\.sql/)
  assert.match(job.main.outputs.sha256 ?? '', /^[0-9a-f]{64}$/)
})

it('verify download reads every entry back: bytes that are the ones uploaded but do not read as an archive fail the check', async () => {
  const tarGz = execFileSync('tar', ['-czf', '-', '-C', workspace.dir, 'data/notes.txt'])
  const readBack = async (key: string, bytes: Buffer) => {
    await svc.s3.putObject(bucket, key, bytes)
    const head = await headObject(svc.s3.client, bucket, key)
    assert.ok(head)
    return verifyByDownload(svc.s3.client, bucket, head, key, digestOf(bytes), AbortSignal.timeout(30_000))
  }
  const digestOf = (bytes: Buffer) => ({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })

  assert.deepEqual(await readBack('read-back/good.tar.gz', tarGz), digestOf(tarGz))

  // Damage in the middle of the deflate stream: the SHA-256 is that of these bytes, yet the gzip does not decode.
  const damaged = Buffer.from(tarGz)
  const middle = damaged.length >> 1
  damaged.writeUInt8(damaged.readUInt8(middle) ^ 0xff, middle)
  await assert.rejects(
    readBack('read-back/damaged.tar.gz', damaged),
    (error: Error) => error instanceof VerificationError && /does not read as the archive that was uploaded/.test(error.message)
  )
})
