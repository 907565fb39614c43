// An app's backups end to end, with supabase-js v2 (browser or server): start one, follow it to
// the end, then download it. The trigger-backup edge function (supabase/functions/trigger-backup)
// inserts the backup_history row and dispatches the backup workflow; the app polls that row, which
// signed-in users may read (policy "signed-in users read backups"), until the action marks it
// success or failed; the backup-download function then answers a link that works for a few
// minutes: the bucket stays private and the store's keys stay in the function.
//
//   const { backup_id } = await startBackup(supabase)          // the user must be signed in
//   showSpinner()
//   const backup = await waitForBackup(supabase, backup_id)
//   if (backup.status !== 'success') return showError(backup.error_text) // a sentence a user can act on
//   showDownloadButton(backup, async () => {
//     const link = await downloadLink(supabase, backup.id)     // ask on click: the link expires
//     window.location.assign(link.url)                         // saved as link.file_name
//   })
//
// Or all three at once: `const { backup, link } = await backUpAndLink(supabase)`.
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
  /** The archive's SHA-256, set with success. */
  sha256?: string | null
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
  // On 502 (GitHub refused the dispatch) the row exists and is already failed.
  return invoke<StartedBackup>(supabase, 'trigger-backup')
}

export interface DownloadLink {
  /** A GET URL for the archive that works until expires_at: open it, or put it in an <a href>. */
  url: string
  expires_at: string
  /** The name the browser saves it under (the last part of the object key). */
  file_name: string
  size_bytes: number
  /** The archive's SHA-256, to check the download with; null for backups made before it was recorded. */
  sha256: string | null
}

/**
 * A short-lived link to a finished backup, as the signed-in user (the table's RLS decides which
 * backups they may download). Ask when the user clicks: the link lives a few minutes. Throws with
 * the function's explanation: not found (or not theirs), still in progress, failed, or pruned.
 */
export async function downloadLink(supabase: SupabaseClient, backupId: string): Promise<DownloadLink> {
  return invoke<DownloadLink>(supabase, 'backup-download', { backup_id: backupId })
}

/** Starts a backup, waits for it, and answers its download link; throws with the row's error_text when it failed. */
export async function backUpAndLink(supabase: SupabaseClient, options: WaitOptions = {}): Promise<{ backup: Backup; link: DownloadLink }> {
  const { backup_id } = await startBackup(supabase)
  const backup = await waitForBackup(supabase, backup_id, options)
  if (backup.status !== 'success') throw new Error(backup.error_text ?? `Backup ${backup_id} ${backup.status}.`)
  return { backup, link: await downloadLink(supabase, backup_id) }
}

/** Calls an edge function; its errors are {error, code}, thrown as an Error with that sentence. */
async function invoke<T>(supabase: SupabaseClient, name: string, body?: Record<string, unknown>): Promise<T> {
  const { data, error } = await supabase.functions.invoke<T>(name, body === undefined ? {} : { body })
  if (!error && data) return data
  const answer: { error?: string } | null = error instanceof FunctionsHttpError ? await error.context.json().catch(() => null) : null
  throw new Error(answer?.error ?? error?.message ?? `${name} answered nothing.`)
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
