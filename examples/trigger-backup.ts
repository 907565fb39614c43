// Start a backup from your app and follow it to the end, with supabase-js v2 (browser or server).
// The trigger-backup edge function (supabase/functions/trigger-backup) inserts the backup_history row
// and dispatches the backup workflow; the app then polls that row, which signed-in users may read
// (policy "signed-in users read backups"), until the action marks it success or failed.
//
//   const { backup_id } = await startBackup(supabase)          // the user must be signed in
//   showSpinner()
//   const backup = await waitForBackup(supabase, backup_id)
//   if (backup.status === 'success') showDownload(backup.s3_key)
//   else showError(backup.error_text)                           // a sentence a user can act on
import { FunctionsHttpError, type SupabaseClient } from '@supabase/supabase-js'

export interface Backup {
  id: string
  dispatch_id: string | null
  status: 'in_progress' | 'success' | 'failed'
  s3_key: string | null
  size_bytes: number | null
  workflow_run_id: string | null
  error_text: string | null
  created_at: string
  finished_at: string | null
}

export interface StartedBackup {
  backup_id: string
  dispatch_id: string
  /** The GitHub Actions run that performs the backup; null where GitHub does not name it (an older GitHub Enterprise Server). */
  workflow_run_id: string | null
  /** That run's page on GitHub, e.g. for a "view the run" link; null when unknown. */
  html_url: string | null
}

/** Starts a backup as the signed-in user. Throws with the function's explanation when it cannot. */
export async function startBackup(supabase: SupabaseClient): Promise<StartedBackup> {
  const { data, error } = await supabase.functions.invoke<StartedBackup>('trigger-backup')
  if (!error && data) return data
  // The function answers {error, code}; on 502 (GitHub refused the dispatch) the row exists and is already failed.
  const body: { error?: string } | null = error instanceof FunctionsHttpError ? await error.context.json().catch(() => null) : null
  throw new Error(body?.error ?? error?.message ?? 'trigger-backup answered without a backup id.')
}

export interface WaitOptions {
  /** Between two reads of the row (default 5 s: a backup takes minutes). */
  intervalMs?: number
  /** Give up after this long (default 2 h, past the workflow's own timeout). */
  timeoutMs?: number
  /** Called with the row after every read, e.g. to show how long it has been running. */
  onProgress?: (backup: Backup) => void
  signal?: AbortSignal
}

/** Reads the row until it is no longer in_progress, and returns it finished. */
export async function waitForBackup(supabase: SupabaseClient, backupId: string, options: WaitOptions = {}): Promise<Backup> {
  const { intervalMs = 5_000, timeoutMs = 2 * 60 * 60 * 1000, onProgress, signal } = options
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { data, error } = await supabase.from('backup_history').select('*').eq('id', backupId).single<Backup>()
    if (error) throw new Error(`Could not read backup ${backupId}: ${error.message}`)
    onProgress?.(data)
    if (data.status !== 'in_progress') return data
    if (Date.now() + intervalMs > deadline) throw new Error(`Backup ${backupId} is still in progress after ${timeoutMs / 60_000} minutes.`)
    await pause(intervalMs, signal)
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted()
    const timer = setTimeout(resolve, ms)
    const abort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', abort, { once: true })
  })
}
