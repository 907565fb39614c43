// The database is down while post runs: post retries for up to a minute, and fails loudly,
// naming the dispatch id, if the database never comes back.
import assert from 'node:assert/strict'
import { afterEach, it } from 'node:test'
import {
  LEDGER_MODES,
  PHASE,
  actionInputs,
  backupHook,
  backupJob,
  errorsOf,
  insertRow,
  losingOutcomeAnswer,
  readRow,
  setUpTestFile,
  type LedgerMode
} from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('outage', { 'data/file.txt': 'content\n' })
afterEach(async () => {
  if (!(await svc.postgres.running())) await svc.postgres.start()
})

/** main killed before the upload, so post has a row to fail. */
async function killedMain(dispatchId: string, mode: LedgerMode = 'table') {
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': dispatchId }, mode)
  await svc.s3.faults({ mode: 'hang', op: 'HeadObject' })
  const main = await backupHook(svc, { workspace: workspace.dir, inputs, killAt: step => step.waitForState(PHASE, 'claimed') })
  await svc.clearFaults()
  return { inputs, state: main.state }
}

// Through the update-backup function the outage reaches the action as the function's 503s.
for (const mode of LEDGER_MODES) {
  it(`${mode}: database down for the first seconds of post, then back: the row is finalized`, async () => {
    const row = await insertRow(svc)
    const { inputs, state } = await killedMain(row.dispatchId, mode)
    await svc.postgres.stop()
    const stoppedAt = Date.now()
    let retries = 0
    let restarted: Promise<void> | undefined
    const post = await backupHook(svc, {
      workspace: workspace.dir,
      inputs,
      hook: 'post',
      state,
      onLine: line => {
        // Bring the database back once post has been refused three times (about 7 s of outage).
        if (/Database not reachable/.test(line) && ++retries === 3) restarted = svc.postgres.start()
      }
    })
    await restarted
    assert.ok(retries >= 3, post.stdout)
    assert.ok(Date.now() - stoppedAt >= 5_000)
    assert.equal(post.exitCode, 1, 'the row ends failed, so the step fails')
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'failed')
    assert.match(finished.error_text ?? '', /before the upload started/)
  })
}

it('database down for the whole post: the step fails loudly, naming the dispatch id', async () => {
  const row = await insertRow(svc)
  const { inputs, state } = await killedMain(row.dispatchId)
  await svc.postgres.stop()
  const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state })
  assert.equal(post.exitCode, 1)
  assert.ok(post.durationMs < 65_000, `post took ${post.durationMs} ms`)
  assert.match(errorsOf(post), new RegExp(`Could not finalize backup ${row.dispatchId} \\(row ${row.id}\\)`))
  await svc.postgres.start()
  assert.equal((await readRow(svc, row.id)).status, 'in_progress', 'left for the sweep, and said so')
  assert.match(errorsOf(post), /sweep/)
})

it('the database commits the success but its answer is lost: the retry finds the row finished as ours', async () => {
  const row = await insertRow(svc)
  await svc.s3.faults({ mode: 'slow', op: 'CompleteMultipartUpload', delayMs: 300 })
  await svc.rest.resetStats()
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    cancelAt: losingOutcomeAnswer(svc)
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal(job.main.outputs.status, 'success')
  assert.equal((await readRow(svc, row.id)).status, 'success')
  assert.equal((await svc.rest.stats()).faulted, 1)
})
