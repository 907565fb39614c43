// Nothing matched `path`: the row is failed with a message that says how to fix the pattern.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('nofiles', { 'data/.only-hidden': 'x\n' })

it('fails the row when no file matches, pointing at path and include-hidden-files', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'data\nmissing/**' })
  })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /No files matched 'path' \(data, missing\/\*\*\)/)
  const failed = await readRow(svc, row.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error_text ?? '', /include-hidden-files: true/)
  assert.deepEqual(await svc.s3.objects(bucket), [])
})
