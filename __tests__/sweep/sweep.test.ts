// The sweep sub-action fails the rows whose post never ran: at once when GitHub reports their run
// completed, after max-age when no running run holds them; rows of running runs are left alone.
import assert from 'node:assert/strict'
import { after, beforeEach, it } from 'node:test'
import { createLedgerTable, errorsOf, insertRow, readRow, staleRow, sweepHook } from '../harness/backup-job.js'
import { startGithubApi } from '../harness/github-api.js'
import { services } from '../harness/services.js'

const svc = await services()
const api = await startGithubApi()
after(async () => {
  await api.close()
  await svc.end()
})
const table = await createLedgerTable(svc, 'backup_history_sweep')
/** A stale row of this file's table. */
const staleRowOf = (runId: string | null, ageMinutes: number) => staleRow(svc, runId, ageMinutes, table)
beforeEach(async () => {
  await svc.sql(`delete from public.${table}`)
  api.runs.clear()
  api.requests.length = 0
  api.failWith = undefined
})

it('fails a row whose run ended without finalizing it, whatever its age, and keeps the run id', async () => {
  const row = await staleRowOf('123', 5)
  api.runs.set('123', { status: 'completed', conclusion: 'cancelled' })
  const sweep = await sweepHook(svc, api, { table })
  assert.equal(sweep.exitCode, 0, sweep.stdout)
  const failed = await readRow(svc, row.id, table)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error_text ?? '', /^Run 123 ended cancelled without finalizing the backup/)
  assert.equal(failed.workflow_run_id, '123')
  assert.ok(failed.finished_at)
  assert.equal(sweep.outputs['swept'], '1')
  assert.deepEqual(JSON.parse(sweep.outputs['swept-ids'] ?? ''), [row.id])
  assert.match(sweep.summary, new RegExp(`${row.id}.*marked failed`, 's'))
  assert.deepEqual(api.requests, ['/repos/octo-org/octo-repo/actions/runs/123'])
})

it('keeps a row whose run is still going, even past max-age', async () => {
  const row = await staleRowOf('124', 3 * 24 * 60)
  api.runs.set('124', { status: 'in_progress' })
  const sweep = await sweepHook(svc, api, { table })
  assert.equal(sweep.exitCode, 0)
  assert.equal((await readRow(svc, row.id, table)).status, 'in_progress')
  assert.equal(sweep.outputs['kept'], '1')
  assert.match(sweep.summary, /run 124 is in_progress/)
})

it('fails a row no run claimed once it is older than max-age, and keeps a younger one', async () => {
  const old = await staleRowOf(null, 7 * 60)
  const young = await staleRowOf(null, 30)
  const sweep = await sweepHook(svc, api, { table })
  assert.equal(sweep.exitCode, 0)
  const failed = await readRow(svc, old.id, table)
  assert.equal(failed.status, 'failed')
  assert.match(
    failed.error_text ?? '',
    /No run finalized this backup within 6h 0m \(it is 7h 0m old, never claimed\)\. Marked failed as abandoned/
  )
  assert.equal(failed.workflow_run_id, '8000000001', 'an unclaimed row records the sweep run that failed it')
  assert.equal((await readRow(svc, young.id, table)).status, 'in_progress')
  assert.equal(api.requests.length, 0)
})

it('parses max-age durations such as 90m and 1h30m', async () => {
  const row = await staleRowOf(null, 100)
  await sweepHook(svc, api, { table, 'max-age': '2h' })
  assert.equal((await readRow(svc, row.id, table)).status, 'in_progress')
  await sweepHook(svc, api, { table, 'max-age': '1h30m' })
  assert.equal((await readRow(svc, row.id, table)).status, 'failed')
})

it('a run GitHub does not know falls back on max-age, and says so', async () => {
  const row = await staleRowOf('999', 8 * 60)
  const sweep = await sweepHook(svc, api, { table })
  assert.equal(sweep.exitCode, 0)
  const failed = await readRow(svc, row.id, table)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error_text ?? '', /claimed by run 999\)\. Run 999 is not a run of octo-org\/octo-repo/)
})

it('GitHub unreachable or the token refused: warns, and only max-age applies', async () => {
  const young = await staleRowOf('125', 10)
  const old = await staleRowOf('126', 10 * 60)
  api.runs.set('125', { status: 'completed', conclusion: 'failure' })
  api.failWith = 502
  const sweep = await sweepHook(svc, api, { table })
  assert.equal(sweep.exitCode, 0, sweep.stdout)
  assert.equal((await readRow(svc, young.id, table)).status, 'in_progress')
  assert.equal((await readRow(svc, old.id, table)).status, 'failed')
  assert.match(sweep.commands.map(c => `${c.command}: ${c.message}`).join('\n'), /warning: GitHub could not tell the state of run 125/)

  api.failWith = undefined
  const refused = await sweepHook(svc, api, { table, 'github-token': 'ghs_wrong' })
  assert.match(refused.commands.map(c => c.message).join('\n'), /Check 'github-token': it needs the actions: read permission/)
  assert.equal((await readRow(svc, young.id, table)).status, 'in_progress')
})

it('dry-run reports what it would fail and writes nothing', async () => {
  const row = await staleRowOf('127', 5)
  api.runs.set('127', { status: 'completed', conclusion: 'timed_out' })
  const sweep = await sweepHook(svc, api, { table, 'dry-run': 'true' })
  assert.equal(sweep.exitCode, 0)
  assert.equal((await readRow(svc, row.id, table)).status, 'in_progress')
  assert.equal(sweep.outputs['swept'], '1')
  assert.match(sweep.summary, /\(dry run\)/)
  assert.match(sweep.summary, /would be marked failed/)
})

it('finished rows are never touched', async () => {
  const done = await insertRow(svc, { status: 'success' }, table)
  const sweep = await sweepHook(svc, api, { table, 'max-age': '1s' })
  assert.equal(sweep.outputs['swept'], '0')
  assert.match(sweep.summary, /No row is in_progress/)
  assert.equal((await readRow(svc, done.id, table)).status, 'success')
})

it('bad inputs fail the step naming the input, and nothing is written', async () => {
  const row = await staleRowOf(null, 10 * 60)
  const sweep = await sweepHook(svc, api, { table, 'max-age': 'six hours', 'dry-run': 'maybe' })
  assert.equal(sweep.exitCode, 1)
  assert.match(errorsOf(sweep), /Input 'max-age': must be a duration such as 90m, 6h or 2d, got 'six hours'/)
  assert.match(errorsOf(sweep), /Input 'dry-run': must be true or false/)
  assert.equal((await readRow(svc, row.id, table)).status, 'in_progress')
})
