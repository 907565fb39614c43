// Around the action's step: whatever becomes of the backup job (a step before the action fails,
// the run is cancelled while queued, the action's step is skipped, the runner is lost), the
// finalizer job that `needs:` it with `if: always()` leaves the row terminal within its own run,
// never success without a verified object, and aborts a lost runner's unfinished upload.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { LEDGER_MODES, actionInputs, errorsOf, insertRow, readRow, setUpTestFile, type LedgerMode } from '../harness/backup-job.js'
import { startGithubApi } from '../harness/github-api.js'
import type { Trigger } from '../harness/runner.js'
import { runBackupWorkflow, type BackupJobFate } from '../harness/workflow-run.js'

const { svc, bucket, workspace } = await setUpTestFile('finalizer', {
  'data/file.txt': 'content\n',
  'data/big.bin': { size: 24 * 1024 * 1024 }
})
const api = await startGithubApi()
after(() => api.close())
const UPLOAD_ID = 'SUPABASE_S3_BACKUP_UPLOAD_ID'
let nextRun = 6_100_000_000 + (Date.now() % 100_000) * 10

/** The finalizer's `with:`: the same Supabase access and store as the backup step. */
function finalizerInputs(mode: LedgerMode): Record<string, string> {
  const { path: _path, ...inputs } = actionInputs(svc, bucket, {}, mode)
  return mode === 'function' ? { ...inputs, 'supabase-key': '' } : inputs
}

async function backUp(mode: LedgerMode, fate: BackupJobFate, stamped = false) {
  const runId = String(nextRun++)
  const row = await insertRow(svc)
  // trigger-backup stamps the run id on the row as it dispatches (GitHub Enterprise Server does not tell it).
  if (stamped) await svc.sql(`update public.backup_history set workflow_run_id = $2 where id = $1`, [row.id, runId])
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key: `finalizer/${row.dispatchId}.{ext}` }, mode)
  const run = await runBackupWorkflow({ svc, api, workspace: workspace.dir, inputs, finalizerInputs: finalizerInputs(mode), runId, fate })
  assert.equal(run.finalizer.exitCode, 0, run.finalizer.stdout)
  return { row, runId, run, finished: await readRow(svc, row.id) }
}

for (const mode of LEDGER_MODES) {
  for (const stamped of [false, true]) {
    const how = stamped ? 'a row trigger-backup stamped with the run' : 'a row without a run id'
    it(`${mode}, ${how}: a step before the action fails; the finalizer fails the row saying so`, async () => {
      const { finished, runId, run } = await backUp(mode, { kind: 'step-fails-before', command: 'exit 3' }, stamped)
      assert.deepEqual(
        run.stepsBefore.map(step => step.exitCode),
        [3]
      )
      assert.equal(run.action, null, 'the action step never ran')
      assert.equal(finished.status, 'failed')
      assert.match(finished.error_text ?? '', /^The backup job ended failure before the backup step ran/)
      assert.match(finished.error_text ?? '', new RegExp(`Marked failed by the finalizer job of run ${runId}`))
      assert.equal(finished.workflow_run_id, runId)
      assert.equal(run.finalizer.outputs['swept'], '1')
      assert.match(run.finalizer.summary, /Backup finalizer for dispatch/)
    })
  }

  it(`${mode}: the run is cancelled while queued; the finalizer, which always runs, fails the row`, async () => {
    const { finished } = await backUp(mode, { kind: 'queued-cancelled' })
    assert.equal(finished.status, 'failed')
    assert.match(finished.error_text ?? '', /^The backup job ended cancelled before the backup step ran/)
  })

  it(`${mode}: the runner is lost mid-upload; the finalizer fails the row and aborts the upload it left open`, async () => {
    // Lost once the multipart upload is open (its id saved) and parts are on their way.
    const lostMidUpload: Trigger = step => step.waitForState(UPLOAD_ID, id => id !== '')
    const { finished, run, row } = await backUp(mode, { kind: 'runner-lost', at: lostMidUpload })
    assert.equal(run.action?.post, null, 'no post runs on a lost runner')
    assert.equal(finished.status, 'failed')
    assert.match(finished.error_text ?? '', /^The backup job ended failure without finalizing the backup: its runner was lost/)
    assert.match(
      finished.error_text ?? '',
      new RegExp(`Its unfinished upload to s3://${bucket}/finalizer/${row.dispatchId}.zip was aborted`)
    )
    assert.equal(finished.upload_key, `finalizer/${row.dispatchId}.zip`)
    assert.deepEqual(await svc.s3.openUploads(bucket, `finalizer/${row.dispatchId}`), [])
    assert.deepEqual(await svc.s3.objects(bucket, `finalizer/${row.dispatchId}`), [])
  })
}

it('the action step is skipped by its if: the job succeeds, and the finalizer still fails the row, saying why', async () => {
  const { finished } = await backUp('table', { kind: 'action-skipped' })
  assert.equal(finished.status, 'failed')
  assert.match(
    finished.error_text ?? '',
    /ended success, but the backup step did not finalize the row \(was it skipped by an if: condition/
  )
})

it('a backup job that finalized its row: the finalizer changes nothing', async () => {
  const { finished, run } = await backUp('table', { kind: 'runs' })
  assert.equal(run.backupJobResult, 'success')
  assert.equal(finished.status, 'success')
  assert.equal(run.finalizer.outputs['swept'], '0')
  assert.match(run.finalizer.stdout, /is success: the backup job finalized it/)
})

it('a row another run holds (the id was dispatched twice) is judged by that run: kept while it runs', async () => {
  const row = await insertRow(svc)
  await svc.sql(
    `update public.backup_history set workflow_run_id = '6099999999', claimed_by = '6099999999/1/backup/feedc0de' where id = $1`,
    [row.id]
  )
  api.runs.set('6099999999', { status: 'in_progress' })
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId })
  const run = await runBackupWorkflow({
    svc,
    api,
    workspace: workspace.dir,
    inputs,
    finalizerInputs: finalizerInputs('table'),
    runId: String(nextRun++),
    fate: { kind: 'step-fails-before', command: 'false' }
  })
  assert.equal(run.finalizer.outputs['kept'], '1')
  const kept = await readRow(svc, row.id)
  assert.equal(kept.status, 'in_progress')
  assert.equal(kept.workflow_run_id, '6099999999')
})

it('a finalizer given both keys still fails the row it can identify, through the function, then fails its step', async () => {
  const runId = String(nextRun++)
  const row = await insertRow(svc)
  const run = await runBackupWorkflow({
    svc,
    api,
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, 'function'),
    finalizerInputs: { ...finalizerInputs('function'), 'supabase-key': svc.env.SUPABASE_SERVICE_ROLE_KEY },
    runId,
    fate: { kind: 'step-fails-before', command: 'exit 1' }
  })
  assert.equal(run.finalizer.exitCode, 1)
  assert.match(errorsOf(run.finalizer), /Input 'supabase-key': must be empty when 'backup-api-key' is set/)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'failed')
  assert.match(finished.error_text ?? '', /^The backup job ended failure before the backup step ran/)
})
