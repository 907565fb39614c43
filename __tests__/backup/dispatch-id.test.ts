// The row is found by dispatch-id alone: exactly one must match, and an unknown id writes nothing
// (malformed ids are in the bad-input matrix).
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, rowCount, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('dispatch', { 'data/file.txt': 'content\n' })

// A table like the seeds' before the unique constraint: two rows can share a dispatch id.
// (The services' database is thrown away with them, so the table is not dropped.)
await svc.sql('create table if not exists public.backup_history_no_unique (like public.backup_history including defaults)')

async function runWith(inputs: Record<string, string>) {
  const rowsBefore = await rowCount(svc)
  const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, inputs) })
  assert.equal(await rowCount(svc), rowsBefore, 'no row may be created')
  assert.deepEqual(await svc.s3.objects(bucket), [], 'nothing may be uploaded')
  return job
}

it('an unknown dispatch-id fails the step, naming the id, and writes nothing', async () => {
  const dispatchId = randomUUID()
  const job = await runWith({ 'dispatch-id': dispatchId })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), new RegExp(`No backup_history row has dispatch_id ${dispatchId}`))
  assert.equal(job.post?.exitCode, 0)
})

it('two rows with the same dispatch-id: the step fails and neither row is touched', async () => {
  const dispatchId = randomUUID()
  const table = 'backup_history_no_unique'
  const first = await insertRow(svc, { dispatch_id: dispatchId }, table)
  const second = await insertRow(svc, { dispatch_id: dispatchId }, table)
  const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, { 'dispatch-id': dispatchId, table }) })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), new RegExp(`More than one ${table} row has dispatch_id ${dispatchId}`))
  for (const row of [first, second]) {
    const unchanged = await readRow(svc, row.id, table)
    assert.equal(unchanged.status, 'in_progress')
    assert.equal(unchanged.workflow_run_id, null)
  }
  assert.deepEqual(await svc.s3.objects(bucket), [])
})
