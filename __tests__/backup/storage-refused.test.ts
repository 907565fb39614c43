// Storage inputs the backup refuses fail the claimed row with a sentence that names the input or
// the bucket, before anything is uploaded: a bucket that does not exist, a missing region.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'
import { storageInputs } from '../harness/storage.js'

const { svc, bucket, workspace } = await setUpTestFile('storage-refused', {})

async function backUp(overrides: Record<string, string>) {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', ...storageInputs(svc, 'x'), ...overrides })
  })
  return { job, row: await readRow(svc, row.id) }
}

describe('Storage inputs refused', () => {
  it('a bucket that does not exist fails the row, naming it', async () => {
    const { job, row } = await backUp({ 'storage-buckets': 'no-such-storage-bucket' })
    assert.equal(job.main.conclusion, 'failure')
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /The Storage bucket 'no-such-storage-bucket' does not exist: check 'storage-buckets'/)
    assert.match(errorsOf(job.main), /no-such-storage-bucket/)
    assert.deepEqual(await svc.s3.openUploads(bucket), [])
  })

  it('a missing region fails the row, naming the input', async () => {
    const { job, row } = await backUp({ 'storage-region': '' })
    assert.equal(job.main.conclusion, 'failure')
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /Input 'storage-region': is required with 'storage-buckets'/)
  })
})
