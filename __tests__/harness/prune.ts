// The prune sub-action (prune/action.yml) run as a scheduled workflow runs it, and the backups it
// judges: success rows with chosen finish times, each with a real object in the local store.
import { randomBytes, randomUUID } from 'node:crypto'
import path from 'node:path'
import type { BackupRow } from '../../src/ledger/ledger.js'
import { ACTION_DIR, actionInputs, assertNoSecrets, type LedgerMode } from './backup-job.js'
import { runHook, type HookResult, type RunHookOptions } from './runner.js'
import type { Services } from './services.js'

/** One stored backup: its row and its object. */
export interface StoredBackup {
  id: string
  key: string
  finishedAt: Date
}

/** A key prefix of its own, so one test's prune never sees another's rows. */
export function newPrefix(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}/`
}

/** Success rows finished at `times`, under `prefix`, each with its object in `bucket`. */
export async function storeBackups(
  svc: Services,
  bucket: string,
  prefix: string,
  times: readonly Date[],
  table = 'backup_history'
): Promise<StoredBackup[]> {
  const backups: StoredBackup[] = []
  for (const [index, finishedAt] of times.entries()) {
    const key = `${prefix}backup-${finishedAt.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z-${index}.zip`
    const body = `backup ${index} of ${prefix}`
    await svc.s3.putObject(bucket, key, body)
    const [row] = await svc.sql<{ id: string }>(
      `insert into public.${table} (dispatch_id, status, s3_key, size_bytes, workflow_run_id, created_at, finished_at)
       values ($1, 'success', $2, $3, '7000000001', $4, $4) returning id`,
      [randomUUID(), key, Buffer.byteLength(body), finishedAt]
    )
    if (!row) throw new Error('insert returned no row')
    backups.push({ id: row.id, key, finishedAt })
  }
  return backups
}

/** Every row under the prefix, as stored. */
export async function rowsUnder(svc: Services, prefix: string, table = 'backup_history'): Promise<BackupRow[]> {
  return svc.sql<BackupRow>(`select * from public.${table} where starts_with(s3_key, $1) order by finished_at desc, id desc`, [prefix])
}

/** The keys the store holds under the prefix. */
export async function keysUnder(svc: Services, bucket: string, prefix: string): Promise<Set<string>> {
  return new Set((await svc.s3.objects(bucket, prefix)).map(object => object.key))
}

/** The prune's inputs for the local services: the backup's store and Supabase inputs (table or function), and the prefix. */
export function pruneInputs(
  svc: Services,
  bucket: string,
  prefix: string,
  overrides: Record<string, string> = {},
  mode: LedgerMode = 'table'
): Record<string, string> {
  const { path: _backupPath, ...inputs } = actionInputs(svc, bucket, {}, mode)
  return { ...inputs, prefix, ...overrides }
}

/** The prune sub-action as its own step; checks that no secret reached the logs. */
export async function pruneHook(
  svc: Services,
  inputs: Record<string, string>,
  options: Omit<RunHookOptions, 'actionDir' | 'workspace' | 'inputs'> = {}
): Promise<HookResult> {
  const result = await runHook({ actionDir: path.join(ACTION_DIR, 'prune'), workspace: ACTION_DIR, ...options, inputs })
  assertNoSecrets(svc, [result])
  return result
}
