// Nothing matched `path`: the row is failed with a message that says how to fix the pattern.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow } from './harness/backup-job.js'
import { services, type Services } from './harness/services.js'
import { makeWorkspace, type Workspace } from './harness/workspace.js'

let svc: Services
let bucket: string
let workspace: Workspace

before(async () => {
  svc = await services()
  bucket = await svc.newBucket('nofiles')
  workspace = await makeWorkspace({ files: { 'data/.only-hidden': 'x\n' } })
})
after(async () => {
  await workspace.cleanup()
  await svc.end()
})

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
