// Re-running on a finished row is a no-op: a notice, the outputs, exit 0, and the row untouched.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('rerun', { 'data/file.txt': 'content\n' })

for (const status of ['success', 'failed'] as const) {
  it(`leaves a ${status} row as it is and reports its status`, async () => {
    const row = await insertRow(svc, { status })
    const before = await readRow(svc, row.id)
    const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }) })
    assert.equal(job.main.exitCode, 0)
    assert.equal(job.main.outputs.status, status)
    assert.equal(job.main.outputs['backup-id'], row.id)
    assert.ok(job.main.commands.some(command => command.command === 'notice' && /already/.test(command.message)))
    assert.equal(job.post?.exitCode, 0)
    assert.deepEqual(await readRow(svc, row.id), before)
    assert.deepEqual(await svc.s3.objects(bucket), [])
  })
}
