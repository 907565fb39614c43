// The sweep with backup-api-key alone: it lists the in_progress rows and fails the abandoned ones
// through the update-backup function (list_in_progress, then the same conditional finalize every
// writer uses), so a workflow that holds no key with table rights can still run it.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { readRow, staleRow, sweepHook } from '../harness/backup-job.js'
import { startGithubApi } from '../harness/github-api.js'
import { services } from '../harness/services.js'

const svc = await services()
const api = await startGithubApi()
after(async () => {
  await api.close()
  await svc.end()
})
const throughFunction = { 'supabase-key': '', 'backup-api-key': svc.env.BACKUP_API_KEY }

it('fails the rows whose run ended, keeps those whose run goes on, with no table key in the workflow', async () => {
  const ended = await staleRow(svc, '4100000001', 5)
  const running = await staleRow(svc, '4100000002', 5)
  const abandoned = await staleRow(svc, null, 8 * 60)
  api.runs.set('4100000001', { status: 'completed', conclusion: 'failure' })
  api.runs.set('4100000002', { status: 'in_progress' })
  const sweep = await sweepHook(svc, api, throughFunction)
  assert.equal(sweep.exitCode, 0, sweep.stdout)

  const failed = await readRow(svc, ended.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error_text ?? '', /^Run 4100000001 ended failure without finalizing the backup/)
  assert.equal(failed.workflow_run_id, '4100000001')
  assert.equal((await readRow(svc, running.id)).status, 'in_progress')
  const old = await readRow(svc, abandoned.id)
  assert.equal(old.status, 'failed')
  assert.match(old.error_text ?? '', /never claimed/)
  assert.ok(JSON.parse(sweep.outputs['swept-ids'] ?? '[]').includes(ended.id))
})

it('a row a run claimed after a dry run saw it abandoned is judged by that run, and kept', async () => {
  const row = await staleRow(svc, null, 8 * 60)
  const dryRun = await sweepHook(svc, api, { ...throughFunction, 'dry-run': 'true' })
  assert.ok(JSON.parse(dryRun.outputs['swept-ids'] ?? '[]').includes(row.id), 'the dry run would fail it')
  await svc.sql(
    `update public.backup_history set workflow_run_id = '4100000003', claimed_by = '4100000003/1/backup/0a0b0c0d' where id = $1`,
    [row.id]
  )
  api.runs.set('4100000003', { status: 'in_progress' })
  await sweepHook(svc, api, throughFunction)
  assert.equal((await readRow(svc, row.id)).status, 'in_progress')
})

it('with supabase-key as well, the sweep refuses both, as the backup does', async () => {
  const sweep = await sweepHook(svc, api, { 'backup-api-key': svc.env.BACKUP_API_KEY })
  assert.equal(sweep.exitCode, 1)
  assert.match(sweep.stdout, /Input 'supabase-key': must be empty when 'backup-api-key' is set/)
})
