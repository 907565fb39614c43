import * as core from '@actions/core'
import { formatBytes } from './summary.js'

/**
 * Where main is in its work. Saved to GITHUB_STATE *before* each phase starts, so that post,
 * which may run after main was killed mid-phase, knows what could be left behind.
 */
export const PHASES = ['locating', 'claimed', 'dumping', 'uploading', 'completing', 'verifying', 'recording', 'finalized'] as const
export type Phase = (typeof PHASES)[number]

/** Everything post needs, and nothing secret: the state file sits on the runner's disk. */
export interface RunState {
  phase: Phase
  dispatchId: string
  rowId: string
  bucket: string
  key: string
  /** Open multipart upload, cleared when it is completed or aborted. */
  uploadId: string
  /** Archive bytes handed to the store so far (parts sent, acknowledged or in flight). */
  bytesSent: number
  /** Size, ETags, CRC32s and SHA-256 of the complete archive, known before CompleteMultipartUpload. */
  archiveBytes: number
  /** ETag forms the store may report, space-separated; empty with verify: none. */
  expectedEtag: string
  /** CRC32 forms (FULL_OBJECT, COMPOSITE) the store may report, space-separated; empty with verify: none. */
  expectedCrc32: string
  sha256: string
  /** ISO time main started uploading: post only aborts uploads of this key initiated after it. */
  uploadStartedAt: string
  /** Signal that interrupted main, if any. */
  interruptedBy: string
  /** Why main failed, when it could not write that to the row itself. */
  failure: string
  /** Final row status main wrote (success | failed | the terminal status it found). */
  finalStatus: string
  /** The run that holds the row, when main found it claimed by another run (double dispatch). */
  ownedBy: string
  /** The job's claim token (claimed_by): post writes as the job whose claim main made. Not secret. */
  claimToken: string
  /** The database dump's tools still running (space-separated pids): post stops what a killed main left. */
  dumpPids: string
  /** The database dump's spool directory (tar formats): post removes what a killed main left. */
  spoolDir: string
}

/** State keys, prefixed so they cannot clash with another action's in the same job. */
const KEYS: { [K in keyof RunState]: string } = {
  phase: 'SUPABASE_S3_BACKUP_PHASE',
  dispatchId: 'SUPABASE_S3_BACKUP_DISPATCH_ID',
  rowId: 'SUPABASE_S3_BACKUP_ROW_ID',
  bucket: 'SUPABASE_S3_BACKUP_BUCKET',
  key: 'SUPABASE_S3_BACKUP_KEY',
  uploadId: 'SUPABASE_S3_BACKUP_UPLOAD_ID',
  bytesSent: 'SUPABASE_S3_BACKUP_BYTES_SENT',
  archiveBytes: 'SUPABASE_S3_BACKUP_ARCHIVE_BYTES',
  expectedEtag: 'SUPABASE_S3_BACKUP_EXPECTED_ETAG',
  expectedCrc32: 'SUPABASE_S3_BACKUP_EXPECTED_CRC32',
  sha256: 'SUPABASE_S3_BACKUP_SHA256',
  uploadStartedAt: 'SUPABASE_S3_BACKUP_UPLOAD_STARTED_AT',
  interruptedBy: 'SUPABASE_S3_BACKUP_INTERRUPTED_BY',
  failure: 'SUPABASE_S3_BACKUP_FAILURE',
  finalStatus: 'SUPABASE_S3_BACKUP_FINAL_STATUS',
  ownedBy: 'SUPABASE_S3_BACKUP_OWNED_BY',
  claimToken: 'SUPABASE_S3_BACKUP_CLAIM_TOKEN',
  dumpPids: 'SUPABASE_S3_BACKUP_DUMP_PIDS',
  spoolDir: 'SUPABASE_S3_BACKUP_SPOOL_DIR'
}

const NUMERIC_KEYS = new Set<keyof RunState>(['bytesSent', 'archiveBytes'])

/** Reads and writes the runner's per-step state (GITHUB_STATE in main, STATE_* in post). */
export interface StateStore {
  save(values: Partial<RunState>): void
  load(): Partial<RunState>
}

/** What this process saved: main reads its own state back; post gets main's through STATE_* env. */
const savedHere = new Map<keyof RunState, string>()

export const runnerState: StateStore = {
  save(values) {
    // The phase goes last: a SIGKILL between two appends must never leave a phase saved
    // without the values (row id, upload id...) that post needs to finish it.
    const entries = (Object.entries(values) as [keyof RunState, RunState[keyof RunState] | undefined][]).sort(
      ([a], [b]) => Number(a === 'phase') - Number(b === 'phase')
    )
    for (const [name, value] of entries) {
      const raw = value === undefined ? '' : String(value)
      // core.saveState appends synchronously to GITHUB_STATE: it survives a SIGKILL that follows.
      core.saveState(KEYS[name], raw)
      savedHere.set(name, raw)
    }
  },
  load() {
    const loaded: Partial<Record<keyof RunState, string | number>> = {}
    for (const [name, key] of Object.entries(KEYS) as [keyof RunState, string][]) {
      const raw = savedHere.get(name) ?? core.getState(key)
      if (raw === '') continue
      if (NUMERIC_KEYS.has(name)) {
        const number = Number(raw)
        if (Number.isSafeInteger(number) && number >= 0) loaded[name] = number
      } else if (name === 'phase') {
        if ((PHASES as readonly string[]).includes(raw)) loaded[name] = raw
      } else {
        loaded[name] = raw
      }
    }
    return loaded as Partial<RunState>
  }
}

/** A sentence saying where main was when it stopped, for error_text when main could not finish. */
export function describeStop(saved: Partial<RunState>): string {
  const who = saved.interruptedBy
    ? `The run was cancelled (${saved.interruptedBy})`
    : 'The main step stopped without finalizing the backup (the runner killed it, the step timed out, or it crashed)'
  switch (saved.phase) {
    case undefined:
    case 'locating':
      return `${who} while looking up the backup row, before anything was uploaded.`
    case 'claimed':
      return `${who} while preparing the archive, before the upload started.`
    case 'dumping':
      return `${who} while dumping the database, before anything was uploaded; the dump was stopped and its spool removed.`
    case 'uploading':
      return `${who} while uploading, after ${formatBytes(saved.bytesSent ?? 0)} of the archive had been sent; the partial upload was aborted and nothing was stored.`
    case 'completing':
      return `${who} while completing the upload of ${formatBytes(saved.archiveBytes ?? 0)}, and the object could not be verified in the store; the unfinished upload was aborted.`
    case 'verifying':
      return `${who} while verifying the uploaded object (${formatBytes(saved.archiveBytes ?? 0)}), and it could not be confirmed to match what was uploaded; it was left in the store as it is.`
    case 'recording':
    case 'finalized':
      return `${who} while recording the result.`
  }
}
