// storage-class, sse, sse-kms-key-id and tags reach the object; with SSE-KMS, whose ETags are not
// MD5 digests, the object is still verified (by size and CRC32) by main and by post; and the SDK's
// checksum settings in the environment do not change the checksums the action sends.
import assert from 'node:assert/strict'
import { GetObjectTaggingCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { it } from 'node:test'
import { actionInputs, backupHook, backupJob, insertRow, readRow, setUpTestFile, whileRecording } from '../harness/backup-job.js'
import { multipartEtag } from '../../src/store/s3.js'
import { partSize } from '../../src/store/upload.js'

const MiB = 1024 * 1024
const { svc, bucket, workspace } = await setUpTestFile('storage', { 'data/big.bin': { size: 12 * MiB }, 'data/small.txt': 'small\n' })

async function tagsOf(key: string): Promise<Record<string, string>> {
  const { TagSet = [] } = await svc.s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))
  return Object.fromEntries(TagSet.map(tag => [tag.Key ?? '', tag.Value ?? '']))
}

it('stores the object with the storage class, SSE-S3 encryption and tags it was given', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, {
      'dispatch-id': row.dispatchId,
      'storage-class': 'STANDARD_IA',
      sse: 'AES256',
      tags: 'app=my app\nretention=30d'
    })
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const { s3_key: key, status } = await readRow(svc, row.id)
  assert.equal(status, 'success')
  const head = await svc.s3.headObject(bucket, key ?? '')
  assert.equal(head.StorageClass, 'STANDARD_IA')
  assert.equal(head.ServerSideEncryption, 'AES256')
  assert.deepEqual(await tagsOf(key ?? ''), { app: 'my app', retention: '30d' })
})

it('SSE-KMS: the ETag is no MD5 digest, so main verifies the size only and marks success', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, sse: 'aws:kms', 'sse-kms-key-id': 'alias/backups' })
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success', finished.error_text ?? '')
  const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
  assert.equal(head.ServerSideEncryption, 'aws:kms')
  assert.equal(head.SSEKMSKeyId, 'alias/backups')
  assert.equal(head.ContentLength, finished.size_bytes)
  // Proof that the store's ETag is not the one computed from the data (S3's md5 of the parts' MD5s).
  const body = await svc.s3.getObject(bucket, finished.s3_key ?? '')
  const partMd5s = [0, partSize(1)].map(start =>
    createHash('md5')
      .update(body.subarray(start, start + partSize(1)))
      .digest()
  )
  assert.notEqual(head.ETag?.replace(/"/g, ''), multipartEtag(partMd5s))
})

it('SSE-KMS: post verifies by size as well, after main was killed before recording', async () => {
  const row = await insertRow(svc)
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, sse: 'aws:kms' })
  const main = await backupHook(svc, {
    workspace: workspace.dir,
    inputs,
    killAt: whileRecording(svc)
  })
  assert.equal(main.signal, 'SIGKILL')
  await svc.clearFaults()
  const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
  assert.equal(post.exitCode, 0, post.stdout)
  assert.equal((await readRow(svc, row.id)).status, 'success')
})

it("the SDK's own checksum settings (AWS_REQUEST_CHECKSUM_CALCULATION) change nothing: the action sends its own CRC32s", async () => {
  const row = await insertRow(svc)
  await svc.s3.resetStats()
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    env: { AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED', AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED' }
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const stats = await svc.s3.stats()
  assert.ok(stats.parts >= 2)
  assert.equal(stats.checksummed, stats.parts)
})
