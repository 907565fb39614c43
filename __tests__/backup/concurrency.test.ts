// Concurrency: a row dispatched twice is backed up by exactly one run, and the other leaves its
// row and object alone; many dispatches at once on the same services all end correct.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { LEDGER_MODES, actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('concurrency', { 'data/file.txt': 'content\n', 'data/more.txt': 'more\n' })

/** An in_progress row that run `runId` (another run, or an earlier attempt) already holds. */
async function rowHeldBy(runId: string) {
  const row = await insertRow(svc)
  await svc.sql(`update public.backup_history set workflow_run_id = $2 where id = $1`, [row.id, runId])
  return row
}

for (const mode of LEDGER_MODES) {
  it(`${mode}: double dispatch: exactly one run uploads and wins, the other exits 0 without touching its row or object`, async () => {
    const row = await insertRow(svc)
    const prefix = `double/${row.dispatchId}`
    const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key: `${prefix}/{run_id}.{ext}` }, mode)
    // The winner sits in its upload while the other run looks the row up and tries to claim it.
    await svc.s3.faults({ mode: 'slow', op: 'CreateMultipartUpload', delayMs: 1_500, count: 1 })
    const jobs = await Promise.all(
      ['5000000001', '5000000002'].map(runId => backupJob(svc, { workspace: workspace.dir, inputs, github: { runId } }))
    )
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success', finished.error_text ?? '')
    const winner = jobs.find(job => job.main.outputs['status'] === 'success')
    const loser = jobs.find(job => job !== winner)
    assert.ok(winner && loser, `one winner: ${jobs.map(job => job.main.stdout).join('\n----\n')}`)
    assert.equal(finished.s3_key, winner.main.outputs['s3-key'])
    assert.equal(finished.s3_key, `${prefix}/${finished.workflow_run_id}.zip`, 'the row holds the winning run and its object')

    assert.equal(loser.main.exitCode, 0, loser.main.stdout)
    assert.equal(loser.post?.exitCode, 0, loser.post?.stdout)
    assert.match(loser.main.stdout, new RegExp(`Row ${row.id} is being backed up by run ${finished.workflow_run_id}`))
    assert.equal(loser.main.outputs['s3-key'], undefined, 'the loser never started an upload')
    const objects = await svc.s3.objects(bucket, prefix)
    assert.deepEqual(
      objects.map(object => object.key),
      [finished.s3_key]
    )
    assert.equal(objects[0]?.size, Number(finished.size_bytes))
    assert.deepEqual(await svc.s3.openUploads(bucket, prefix), [])
  })
}

it('a run stopped before it saved anything leaves a row another run holds to that run: its post does not fail it', async () => {
  const row = await rowHeldBy('5000000010')
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    github: { runId: '5000000011' },
    cancelAt: () => Promise.resolve()
  })
  assert.equal(job.post?.exitCode, 0, job.post?.stdout)
  assert.match(job.post?.stdout ?? '', /being backed up by run 5000000010/)
  const untouched = await readRow(svc, row.id)
  assert.equal(untouched.status, 'in_progress')
  assert.equal(untouched.workflow_run_id, '5000000010')
})

it('a bad input in the second run fails that step but not the row the first run holds', async () => {
  const row = await rowHeldBy('5000000020')
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, format: '7z' }),
    github: { runId: '5000000021' }
  })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /Input 'format'/)
  assert.equal(job.post?.exitCode, 0, job.post?.stdout)
  const untouched = await readRow(svc, row.id)
  assert.equal(untouched.status, 'in_progress')
  assert.equal(untouched.error_text, null)
})

it('a re-run attempt takes over the row its earlier attempt left in_progress', async () => {
  const row = await rowHeldBy('5000000030')
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    github: { runId: '5000000030', runAttempt: '2' }
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal((await readRow(svc, row.id)).status, 'success')
})

it('20 dispatches at once on the same services: every row ends success with its own object', async () => {
  const rows = await Promise.all(Array.from({ length: 20 }, () => insertRow(svc)))
  const jobs = await Promise.all(
    rows.map((row, index) =>
      backupJob(svc, {
        workspace: workspace.dir,
        inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
        github: { runId: String(5000000100 + index) }
      })
    )
  )
  const keys = new Set<string>()
  for (const [index, row] of rows.entries()) {
    const job = jobs[index]
    assert.equal(job?.main.exitCode, 0, job?.main.stdout)
    assert.equal(job?.post?.exitCode, 0)
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success', finished.error_text ?? '')
    assert.equal(finished.workflow_run_id, String(5000000100 + index))
    const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
    assert.equal(head.ContentLength, Number(finished.size_bytes))
    keys.add(finished.s3_key ?? '')
  }
  assert.equal(keys.size, rows.length, 'every dispatch has its own object')
  assert.deepEqual(await svc.s3.openUploads(bucket), [])
})
