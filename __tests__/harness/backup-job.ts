// Runs the built action (dist/) the way the runner does, against the local services, and
// reads back what the contract is about: the row, the store, the logs.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { after, afterEach } from 'node:test'
import type { BackupRow } from '../../src/ledger/ledger.js'
import type { GithubApiStandIn } from './github-api.js'
import {
  runHook,
  runJob,
  type HookResult,
  type JobResult,
  type RunHookOptions,
  type RunJobOptions,
  type RunningStep,
  type Trigger
} from './runner.js'
import { services, type RestFault, type Services } from './services.js'
import { makeWorkspace, type Workspace, type WorkspaceSpec } from './workspace.js'

export const ACTION_DIR = path.resolve(import.meta.dirname, '../..')
export const PHASE = 'SUPABASE_S3_BACKUP_PHASE'
/** The runner's real cancel ladder: SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after that. */
export const RUNNER_LADDER = { intToTermMs: 7_500, termToKillMs: 2_500 }

/** Once main uploads, the claim is written: a fault armed on writes then hits the outcome's write. */
async function faultOutcomeWrite(step: RunningStep, svc: Services, fault: RestFault): Promise<void> {
  await step.waitForState(PHASE, 'uploading')
  await svc.rest.faults({ ...fault, methods: ['PATCH'] })
}

/**
 * A cancel/kill trigger for the moment the object is stored but the row not yet written: the
 * database's writes hang from the upload on, and the trigger fires once main is recording.
 */
export function whileRecording(svc: Services): Trigger {
  return async step => {
    await faultOutcomeWrite(step, svc, { mode: 'hang' })
    await step.waitForState(PHASE, 'recording')
  }
}

/** A trigger that never fires: it only makes the database lose its answer to the outcome's write. */
export function losingOutcomeAnswer(svc: Services): Trigger {
  return async step => {
    await faultOutcomeWrite(step, svc, { mode: 'lose-answer', count: 1 })
    return new Promise(() => {})
  }
}

export interface NewRow {
  id: string
  dispatchId: string
}

/** Inserts a row as the app's trigger would (superuser, bypassing the API). */
export async function insertRow(svc: Services, values: Partial<BackupRow> = {}, table = 'backup_history'): Promise<NewRow> {
  const dispatchId = values.dispatch_id ?? randomUUID()
  const status = values.status ?? 'in_progress'
  const terminal = status !== 'in_progress'
  const [row] = await svc.sql<{ id: string }>(
    `insert into public.${table} (dispatch_id, status, s3_key, size_bytes, error_text, finished_at)
     values ($1, $2, $3, $4, $5, $6) returning id`,
    [
      dispatchId,
      status,
      values.s3_key ?? (status === 'success' ? 'backups/earlier.zip' : null),
      values.size_bytes ?? (status === 'success' ? 123 : null),
      values.error_text ?? (status === 'failed' ? 'an earlier failure' : null),
      terminal ? new Date() : null
    ]
  )
  assert.ok(row)
  return { id: row.id, dispatchId }
}

export async function readRow(svc: Services, id: string, table = 'backup_history'): Promise<BackupRow> {
  const [row] = await svc.sql<BackupRow>(`select *, size_bytes::float8 as size_bytes from public.${table} where id = $1`, [id])
  assert.ok(row, `row ${id} not found`)
  return row
}

/** An in_progress row held by `runId` (or none), created `ageMinutes` ago: what a sweep judges. */
export async function staleRow(svc: Services, runId: string | null, ageMinutes: number, table = 'backup_history') {
  const row = await insertRow(svc, {}, table)
  await svc.sql(`update public.${table} set workflow_run_id = $2, created_at = now() - make_interval(mins => $3) where id = $1`, [
    row.id,
    runId,
    ageMinutes
  ])
  return row
}

export async function rowCount(svc: Services, table = 'backup_history'): Promise<number> {
  const [row] = await svc.sql<{ n: number }>(`select count(*)::int as n from public.${table}`)
  return row?.n ?? 0
}

/**
 * The two ways the action reaches the rows: the table itself with `supabase-key`, or only the
 * update-backup edge function with `backup-api-key`. Fault tests run against both.
 */
export const LEDGER_MODES = ['table', 'function'] as const
export type LedgerMode = (typeof LEDGER_MODES)[number]

/** The inputs a workflow would pass, pointed at the local services. */
export function actionInputs(
  svc: Services,
  bucket: string,
  overrides: Record<string, string> = {},
  mode: LedgerMode = 'table'
): Record<string, string> {
  return {
    path: 'data',
    bucket,
    endpoint: svc.env.S3_ENDPOINT,
    'force-path-style': 'true',
    'aws-access-key-id': svc.env.S3_ACCESS_KEY_ID,
    'aws-secret-access-key': svc.env.S3_SECRET_ACCESS_KEY,
    'supabase-url': svc.env.SUPABASE_URL,
    ...(mode === 'table' ? { 'supabase-key': svc.env.SUPABASE_SERVICE_ROLE_KEY } : { 'backup-api-key': svc.env.BACKUP_API_KEY }),
    ...overrides
  }
}

/** Fails the test if a secret appears anywhere a user could read it. */
export function assertNoSecrets(
  svc: Services,
  results: readonly (HookResult | null)[],
  rows: readonly BackupRow[] = [],
  moreSecrets: readonly string[] = []
): void {
  const secrets = [
    svc.env.SUPABASE_SERVICE_ROLE_KEY,
    svc.env.SUPABASE_SECRET_KEY,
    svc.env.BACKUP_API_KEY,
    svc.env.S3_SECRET_ACCESS_KEY,
    svc.env.JWT_SECRET,
    ...moreSecrets
  ]
  for (const result of results) {
    if (!result) continue
    // ::add-mask:: lines are how a secret is handed to the runner, which never shows them.
    const shown = [...result.stdoutLines, ...result.stderrLines].filter(line => !line.startsWith('::add-mask::'))
    const surfaces = [...shown, result.summary, ...Object.values(result.outputs), ...Object.values(result.state)]
    for (const secret of secrets) {
      const leak = surfaces.find(text => text.includes(secret))
      assert.equal(leak, undefined, `a secret leaked in ${result.hook}: ${leak}`)
    }
  }
  for (const row of rows) {
    for (const secret of secrets) assert.ok(!(row.error_text ?? '').includes(secret), `a secret leaked in error_text of ${row.id}`)
  }
}

export type JobOptions = Omit<RunJobOptions, 'actionDir' | 'workspace'> & { workspace: string }

/** main then post, as the runner runs them; checks that no secret reached the logs. */
export async function backupJob(svc: Services, options: JobOptions): Promise<JobResult> {
  const job = await runJob({ actionDir: ACTION_DIR, ...RUNNER_LADDER, ...options })
  assertNoSecrets(svc, [job.main, job.post])
  return job
}

export type HookOptions = Omit<RunHookOptions, 'actionDir' | 'workspace'> & { workspace: string }

/** One hook alone: to run main until it is killed, then post by itself. */
export async function backupHook(svc: Services, options: HookOptions): Promise<HookResult> {
  const result = await runHook({ actionDir: ACTION_DIR, ...RUNNER_LADDER, ...options })
  assertNoSecrets(svc, [result])
  return result
}

/** The sweep sub-action (sweep/action.yml) as a scheduled workflow runs it, against a GitHub API stand-in. */
export async function sweepHook(
  svc: Services,
  api: GithubApiStandIn,
  inputs: Record<string, string>,
  options: Omit<RunHookOptions, 'actionDir' | 'workspace' | 'inputs'> = {}
): Promise<HookResult> {
  const result = await runHook({
    actionDir: path.join(ACTION_DIR, 'sweep'),
    workspace: ACTION_DIR,
    inputs: { 'supabase-url': svc.env.SUPABASE_URL, 'supabase-key': svc.env.SUPABASE_SERVICE_ROLE_KEY, ...inputs },
    ...options,
    github: { apiUrl: api.url, token: api.token, repository: api.repository, runId: '8000000001', ...options.github }
  })
  assertNoSecrets(svc, [result], [], [api.token])
  return result
}

/** The restore sub-action's inputs (restore/action.yml): the action's store and Supabase inputs, and `path` to restore into. */
export function restoreInputs(svc: Services, bucket: string, overrides: Record<string, string> = {}): Record<string, string> {
  const { path: _backupPath, ...inputs } = actionInputs(svc, bucket)
  return { ...inputs, ...overrides }
}

/** The restore sub-action (restore/action.yml), run as its own step; checks that no secret reached the logs. */
export async function restoreHook(
  svc: Services,
  inputs: Record<string, string>,
  options: Omit<RunHookOptions, 'actionDir' | 'workspace' | 'inputs'> & { workspace?: string } = {}
): Promise<HookResult> {
  const result = await runHook({ actionDir: path.join(ACTION_DIR, 'restore'), workspace: ACTION_DIR, ...options, inputs })
  assertNoSecrets(svc, [result])
  return result
}

/**
 * A table shaped and guarded like backup_history (constraints, transition trigger), so a test
 * that lists every in_progress row sees only its own. Kept until the services stop.
 */
export async function createLedgerTable(svc: Services, name: string): Promise<string> {
  await svc.sql(`create table if not exists public.${name} (like public.backup_history including all)`)
  await svc.sql(`drop trigger if exists ${name}_guard_transition on public.${name}`)
  await svc.sql(
    `create trigger ${name}_guard_transition before update on public.${name} for each row execute function public.backup_history_guard_transition()`
  )
  return name
}

/** The message of the step's failure annotation(s). */
export function errorsOf(result: HookResult | null): string {
  return (result?.commands ?? [])
    .filter(command => command.command === 'error')
    .map(command => command.message)
    .join('\n')
}

/** Services, a bucket of its own and a generated workspace for one test file; cleaned up after it. */
export async function setUpTestFile(
  bucketPrefix: string,
  files: WorkspaceSpec['files']
): Promise<{ svc: Services; bucket: string; workspace: Workspace }> {
  const svc = await services()
  const bucket = await svc.newBucket(bucketPrefix)
  const workspace = await makeWorkspace({ files })
  afterEach(() => svc.clearFaults())
  after(async () => {
    await workspace.cleanup()
    await svc.end()
  })
  return { svc, bucket, workspace }
}
