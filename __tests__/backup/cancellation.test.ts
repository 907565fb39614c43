// A cancelled run (SIGINT, then the runner's SIGTERM/SIGKILL ladder) never leaves the row in_progress
// and never leaves parts in the store; main itself finishes inside the runner's 7.5 s. Both backends.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import {
  LEDGER_MODES,
  PHASE,
  actionInputs,
  backupHook,
  backupJob,
  insertRow,
  readRow,
  setUpTestFile,
  whileRecording
} from '../harness/backup-job.js'

const MiB = 1024 * 1024
const { svc, workspace } = await setUpTestFile('cancel', { 'data/big.bin': { size: 40 * MiB }, 'data/small.txt': 'small\n' })

for (const mode of LEDGER_MODES) {
  // A bucket per backend: some tests check that nothing at all was stored.
  const bucket = await svc.newBucket(`cancel-${mode}`)

  it(`${mode}: cancelled before the upload started: row failed, main exits on SIGINT alone`, async () => {
    const row = await insertRow(svc)
    // The key check hangs, so the SIGINT lands while main prepares the upload.
    await svc.s3.faults({ mode: 'hang', op: 'HeadObject' })
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode),
      cancelAt: step => step.waitForState(PHASE, 'claimed')
    })
    assert.equal(job.main.conclusion, 'cancelled')
    assert.equal(job.main.exitedBeforeSigterm, true, `signals: ${JSON.stringify(job.main.signalsSent)}`)
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'failed')
    assert.match(finished.error_text ?? '', /cancelled \(SIGINT\) while preparing the archive, before the upload started/)
    assert.ok(finished.finished_at)
    assert.equal(job.post?.exitCode, 0)
    await svc.clearFaults()
    assert.deepEqual(await svc.s3.objects(bucket), [])
  })

  it(`${mode}: cancelled mid-upload: row failed saying how far it got, and no multipart upload is left`, async () => {
    const row = await insertRow(svc)
    await svc.s3.faults({ mode: 'slow', op: 'UploadPart', bytesPerSec: 4 * MiB })
    await svc.s3.resetStats()
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode),
      cancelAt: () => svc.s3.waitForPartBytes(10 * MiB)
    })
    assert.equal(job.main.conclusion, 'cancelled')
    assert.equal(job.main.exitedBeforeSigterm, true, `signals: ${JSON.stringify(job.main.signalsSent)}`)
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'failed')
    assert.match(
      finished.error_text ?? '',
      /cancelled \(SIGINT\) while uploading, after \d+\.\d MiB of the archive had been sent; the partial upload was aborted/
    )
    assert.equal(finished.s3_key, null)
    assert.deepEqual(await svc.s3.openUploads(bucket), [])
    assert.deepEqual(await svc.s3.objects(bucket), [])
  })

  it(`${mode}: cancelled after the upload, before the row was written: the row ends success`, async () => {
    const row = await insertRow(svc)
    const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode)
    // Give the trigger time to hold the database write once the claim is done.
    await svc.s3.faults({ mode: 'slow', op: 'CompleteMultipartUpload', delayMs: 500 })
    const main = await backupHook(svc, {
      workspace: workspace.dir,
      inputs,
      cancelAt: whileRecording(svc)
    })
    assert.equal(main.conclusion, 'cancelled')
    assert.equal(main.exitedBeforeSigterm, true, `signals: ${JSON.stringify(main.signalsSent)}`)
    await svc.clearFaults()

    const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
    assert.equal(post.exitCode, 0, post.stdout)
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success')
    const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
    assert.equal(Number(finished.size_bytes), head.ContentLength)
    assert.equal(finished.error_text, null)
  })

  it(`${mode}: cancelled while verifying: main still records the verified object as success`, async () => {
    const row = await insertRow(svc)
    await svc.s3.faults({ mode: 'slow', op: 'CompleteMultipartUpload', delayMs: 300 })
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode),
      cancelAt: step => step.waitForState(PHASE, 'completing')
    })
    assert.equal(job.main.exitedBeforeSigterm, true)
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success', finished.error_text ?? '')
    assert.equal(job.post?.exitCode, 0)
  })

  it(`${mode}: cancelled the moment main starts, before it saved anything: post still fails the row`, async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode),
      cancelAt: () => Promise.resolve()
    })
    assert.equal(job.main.conclusion, 'cancelled')
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'failed')
    assert.match(finished.error_text ?? '', /before anything was uploaded/)
    assert.deepEqual(await svc.s3.openUploads(bucket), [])
  })
}

it('cancelled while the store creates the multipart upload: the upload it creates is still aborted', async () => {
  const bucket = await svc.newBucket('cancel-create')
  const row = await insertRow(svc)
  // The store is still creating the upload when the SIGINT lands; it creates it anyway.
  await svc.s3.faults({ mode: 'slow', op: 'CreateMultipartUpload', delayMs: 1_000 })
  await svc.s3.resetStats()
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    cancelAt: step => step.waitForState(PHASE, 'uploading')
  })
  assert.equal(job.main.conclusion, 'cancelled')
  assert.equal(job.main.exitedBeforeSigterm, true)
  assert.equal((await readRow(svc, row.id)).status, 'failed')
  // The store answers the create after its delay, whether or not main is still waiting for it.
  while ((await svc.s3.stats()).creates < 1) await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(await svc.s3.openUploads(bucket), [])
})
