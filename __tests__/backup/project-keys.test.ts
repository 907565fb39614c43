// The action, its post step, the restore and the sweep in each state a project's API keys go
// through: legacy keys only, legacy and new keys, and legacy keys disabled. supabase-key is the
// project's secret key (sb_secret_) or the legacy service role key; backup-api-key goes through
// the update-backup function, which picks its own key from what Supabase gives it.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import {
  actionInputs,
  backupJob,
  createLedgerTable,
  errorsOf,
  insertRow,
  readRow,
  restoreHook,
  restoreInputs,
  setUpTestFile,
  sweepHook,
  type LedgerMode
} from '../harness/backup-job.js'
import { startGithubApi } from '../harness/github-api.js'
import type { KeyState } from '../harness/services.js'

const { svc, bucket, workspace } = await setUpTestFile('keys', { 'data/notes.txt': 'hello\n', 'data/sub/more.txt': 'more\n' })
const api = await startGithubApi()
const scratch = await mkdtemp(path.join(os.tmpdir(), 'project-keys-'))
const sweepTable = await createLedgerTable(svc, 'backup_history_keys_sweep')
after(async () => {
  await svc.rest.projectKeys('both')
  await api.close()
  await rm(scratch, { recursive: true, force: true })
})

type Access = 'secret key' | 'legacy key' | 'backup-api-key'

/** How a workflow reaches the rows: supabase-key holding the secret or the legacy key, or the function. */
function access(mode: Access): { mode: LedgerMode; supabaseKey?: string } {
  if (mode === 'backup-api-key') return { mode: 'function' }
  return { mode: 'table', supabaseKey: mode === 'secret key' ? svc.env.SUPABASE_SECRET_KEY : svc.env.SUPABASE_SERVICE_ROLE_KEY }
}

function inputsFor(mode: Access, overrides: Record<string, string> = {}): Record<string, string> {
  const { mode: ledgerMode, supabaseKey } = access(mode)
  return actionInputs(svc, bucket, { ...(supabaseKey ? { 'supabase-key': supabaseKey } : {}), ...overrides }, ledgerMode)
}

/** What works in each state: every access but the ones whose key the project does not accept. */
const WORKING: Record<KeyState, Access[]> = {
  'legacy-only': ['legacy key', 'backup-api-key'],
  both: ['secret key', 'legacy key', 'backup-api-key'],
  'legacy-disabled': ['secret key', 'backup-api-key']
}

for (const state of ['legacy-only', 'both', 'legacy-disabled'] as const) {
  describe(`project keys: ${state}`, () => {
    for (const mode of WORKING[state]) {
      it(`${mode}: main backs up and marks the row success, post leaves it, and the restore reads it back`, async () => {
        await svc.rest.projectKeys(state)
        const row = await insertRow(svc)
        const job = await backupJob(svc, { workspace: workspace.dir, inputs: inputsFor(mode, { 'dispatch-id': row.dispatchId }) })
        assert.equal(job.main.conclusion, 'success', job.main.stdout)
        assert.equal(job.post?.conclusion, 'success', job.post?.stdout)
        const done = await readRow(svc, row.id)
        assert.equal(done.status, 'success')

        const { 'supabase-key': key, 'backup-api-key': apiKey } = inputsFor(mode)
        const destination = path.join(scratch, `${state}-${mode.replace(/ /g, '-')}`)
        const restore = await restoreHook(
          svc,
          restoreInputs(svc, bucket, {
            'backup-id': row.id,
            path: destination,
            ...(key ? { 'supabase-key': key } : { 'supabase-key': '', 'backup-api-key': apiKey ?? '' })
          })
        )
        assert.equal(restore.conclusion, 'success', restore.stdout)
        assert.equal(restore.outputs.sha256, done.sha256)
      })
    }

    if (state !== 'legacy-only') {
      it('post finalizes with the secret key a row main left when it was killed', async () => {
        await svc.rest.projectKeys(state)
        const row = await insertRow(svc)
        const job = await backupJob(svc, {
          workspace: workspace.dir,
          inputs: inputsFor('secret key', { 'dispatch-id': row.dispatchId }),
          killAt: step => step.waitForState('SUPABASE_S3_BACKUP_PHASE', 'claimed'),
          runPostAfterKill: true
        })
        assert.equal(job.post?.conclusion, 'failure', job.post?.stdout)
        const failed = await readRow(svc, row.id)
        assert.equal(failed.status, 'failed')
        assert.match(failed.error_text ?? '', /stopped without finalizing the backup/)
      })

      it('the sweep fails an abandoned row with the secret key', async () => {
        await svc.rest.projectKeys(state)
        const row = await insertRow(svc, {}, sweepTable)
        await svc.sql(`update public.${sweepTable} set created_at = now() - interval '2 days' where id = $1`, [row.id])
        const sweep = await sweepHook(svc, api, { table: sweepTable, 'supabase-key': svc.env.SUPABASE_SECRET_KEY, 'max-age': '1d' })
        assert.equal(sweep.exitCode, 0, sweep.stdout)
        assert.equal((await readRow(svc, row.id, sweepTable)).status, 'failed')
      })
    }
  })
}

describe('keys the project does not accept', () => {
  it('legacy keys disabled: the legacy key fails the step saying so and what to use instead, and writes nothing', async () => {
    await svc.rest.projectKeys('legacy-disabled')
    const row = await insertRow(svc)
    const job = await backupJob(svc, { workspace: workspace.dir, inputs: inputsFor('legacy key', { 'dispatch-id': row.dispatchId }) })
    assert.equal(job.main.conclusion, 'failure')
    assert.match(
      errorsOf(job.main),
      /Supabase refused 'supabase-key' because this project's legacy API keys \(anon, service_role\) are disabled\. Use the project's secret key \(sb_secret_\.\.\./
    )
    assert.equal(job.post?.conclusion, 'success', job.post?.stdout)
    const untouched = await readRow(svc, row.id)
    assert.equal(untouched.status, 'in_progress')
    assert.equal(untouched.workflow_run_id, null)

    const sweep = await sweepHook(svc, api, { table: sweepTable })
    assert.notEqual(sweep.exitCode, 0)
    assert.match(errorsOf(sweep), /legacy API keys \(anon, service_role\) are disabled/)
  })

  it('legacy keys only: a secret key is not a key of the project yet', async () => {
    await svc.rest.projectKeys('legacy-only')
    const row = await insertRow(svc)
    const job = await backupJob(svc, { workspace: workspace.dir, inputs: inputsFor('secret key', { 'dispatch-id': row.dispatchId }) })
    assert.equal(job.main.conclusion, 'failure')
    assert.match(errorsOf(job.main), /Supabase rejected 'supabase-key' \(Invalid API key\)/)
    assert.equal((await readRow(svc, row.id)).status, 'in_progress')
  })

  it('the secret key never reaches the logs, the outputs, the state or error_text of a backup that fails', async () => {
    await svc.rest.projectKeys('legacy-disabled')
    const row = await insertRow(svc)
    // backupJob checks every surface for the secret key (assertNoSecrets); the row gets an error_text to check too.
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: inputsFor('secret key', { 'dispatch-id': row.dispatchId, path: 'nothing-here' })
    })
    assert.equal(job.main.conclusion, 'failure')
    const failed = await readRow(svc, row.id)
    assert.equal(failed.status, 'failed')
    assert.ok(!(failed.error_text ?? '').includes(svc.env.SUPABASE_SECRET_KEY))
    assert.ok(job.main.stdoutLines.includes(`::add-mask::${svc.env.SUPABASE_SECRET_KEY}`))
  })
})
