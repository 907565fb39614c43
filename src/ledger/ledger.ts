import { LedgerError } from '../errors.js'
import { retry, type RetryPolicy } from '../retry.js'
import { redact } from '../runner/secrets.js'

export const ROW_STATUSES = ['in_progress', 'success', 'failed'] as const
export type RowStatus = (typeof ROW_STATUSES)[number]

/** A backup_history row, as the action reads it. */
export interface BackupRow {
  id: string
  dispatch_id: string | null
  status: RowStatus
  s3_key: string | null
  size_bytes: number | null
  workflow_run_id: string | null
  error_text: string | null
  created_at: string
  finished_at: string | null
  /** SHA-256 of the archive (migration 009); absent from tables that predate it. */
  sha256?: string | null
}

/** The only two ways a row may leave in_progress. */
export type Outcome = { status: 'success'; s3Key: string; sizeBytes: number; sha256: string } | { status: 'failed'; errorText: string }

/** A terminal write: the columns the contract sets for success and for failed. */
export type TerminalPatch =
  | {
      status: 'success'
      s3_key: string
      size_bytes: number
      /** Left out only for a table (or an update-backup function) that predates migration 009. */
      sha256?: string
      finished_at: string
      workflow_run_id: string
      error_text: null
    }
  | { status: 'failed'; error_text: string; finished_at: string; workflow_run_id: string }

/** The writes there are: a claim (the run id, while the row stays in_progress) and the terminal moves. */
export type RowPatch = { workflow_run_id: string } | TerminalPatch

/**
 * Where rows live. A backend offers reads, an insert, and exactly one kind of write: the
 * conditional update, so no backend can move a row that has already finished, or one that
 * another run is working on.
 */
export interface LedgerBackend {
  /** Ends the "check that ..." advice when no row matches: what decides which rows this access sees. */
  readonly visibilityHint: string
  /** Rows with this dispatch id; at most `limit`. */
  findByDispatchId(dispatchId: string, limit: number): Promise<BackupRow[]>
  getById(id: string): Promise<BackupRow | undefined>
  insert(row: { dispatch_id: string; workflow_run_id: string }): Promise<BackupRow>
  /**
   * `UPDATE ... SET patch WHERE id = $id AND status = 'in_progress' AND workflow_run_id = $owner
   * RETURNING *` (`workflow_run_id IS NULL` when `owner` is null): the rows it changed.
   */
  updateIfInProgress(id: string, patch: RowPatch, owner: string | null): Promise<BackupRow[]>
}

/** What the sweep needs besides the conditional update: the rows still in_progress. */
export interface InProgressSource {
  /** in_progress rows, oldest first; at most `limit`. */
  listInProgress(limit: number): Promise<BackupRow[]>
}

/** Columns every write relies on: a table missing one (e.g. before migration 008) is refused before any write. */
const REQUIRED_COLUMNS = ['status', 's3_key', 'size_bytes', 'workflow_run_id', 'error_text', 'finished_at'] as const

/** The sha256 column's check (migration 009). */
export const SHA256_HEX = /^[0-9a-f]{64}$/

/** error_text is shown to users: no secrets, at most 1000 characters (the table's check). */
export const MAX_ERROR_TEXT = 1000

export function toErrorText(message: string): string {
  const clean = redact(message).replace(/\s+/g, ' ').trim() || 'The backup failed for an unknown reason.'
  return clean.length > MAX_ERROR_TEXT ? `${clean.slice(0, MAX_ERROR_TEXT - 3)}...` : clean
}

/** The columns a terminal write sets: the contract's state machine in one function. */
export function terminalPatch(outcome: Outcome, workflowRunId: string, now: Date): TerminalPatch {
  if (outcome.status === 'success') {
    if (outcome.s3Key.trim() === '') throw new LedgerError('Refusing to mark the row success with an empty s3_key.')
    if (!Number.isSafeInteger(outcome.sizeBytes) || outcome.sizeBytes < 0) {
      throw new LedgerError(`Refusing to mark the row success with size_bytes ${outcome.sizeBytes}.`)
    }
    if (!SHA256_HEX.test(outcome.sha256)) throw new LedgerError(`Refusing to mark the row success with sha256 '${outcome.sha256}'.`)
    return {
      status: 'success',
      s3_key: outcome.s3Key,
      size_bytes: outcome.sizeBytes,
      sha256: outcome.sha256,
      finished_at: now.toISOString(),
      workflow_run_id: workflowRunId,
      error_text: null
    }
  }
  return {
    status: 'failed',
    error_text: toErrorText(outcome.errorText),
    finished_at: now.toISOString(),
    workflow_run_id: workflowRunId
  }
}

export type FinalizeResult =
  /** This call moved the row to its terminal status. */
  | { written: true; row: BackupRow }
  /**
   * Nothing changed: the row was already terminal (finished by another writer, or by an earlier
   * attempt of ours), or it is in_progress but held by another run.
   */
  | { written: false; row: BackupRow }

export type ClaimResult =
  | { claimed: true; row: BackupRow }
  /** The row is finished, or in_progress and claimed by another run (`row.workflow_run_id`). */
  | { claimed: false; row: BackupRow }

/** A row another run is working on: this run must leave it (and its object) alone. */
export function ownedByAnotherRun(row: BackupRow, runId: string): boolean {
  return row.status === 'in_progress' && row.workflow_run_id !== null && row.workflow_run_id !== runId
}

export function isTransient(error: unknown): boolean {
  return error instanceof LedgerError && error.transient
}

/**
 * The row's state machine: in_progress -> success | failed, each move one conditional update,
 * retried while the database is unreachable, never applied to a finished row.
 */
export class Ledger {
  constructor(
    private readonly backend: LedgerBackend,
    private readonly table: string,
    private readonly workflowRunId: string,
    private readonly retryPolicy: RetryPolicy,
    private readonly onRetry: (message: string) => void = () => {}
  ) {}

  /** The one row with this dispatch id. Zero or several rows is an error naming the dispatch id. */
  async locate(dispatchId: string): Promise<BackupRow> {
    const rows = await this.withRetry(() => this.backend.findByDispatchId(dispatchId, 2))
    if (rows.length === 0) {
      throw new LedgerError(
        `No ${this.table} row has dispatch_id ${dispatchId}. Check that the app inserted the row before dispatching the workflow, that the workflow passes that same dispatch_id to 'dispatch-id', and ${this.backend.visibilityHint}.`
      )
    }
    if (rows.length > 1) {
      throw new LedgerError(
        `More than one ${this.table} row has dispatch_id ${dispatchId}; refusing to guess which to finalize. Add the unique constraint on dispatch_id from supabase/migrations.`
      )
    }
    return this.checkColumns(rows[0] as BackupRow)
  }

  /** A new in_progress row for scheduled runs. */
  async create(dispatchId: string): Promise<BackupRow> {
    const row = await this.withRetry(async () => {
      try {
        return await this.backend.insert({ dispatch_id: dispatchId, workflow_run_id: this.workflowRunId })
      } catch (error) {
        // A retried insert whose first attempt committed: the row is ours.
        const existing = await this.backend.findByDispatchId(dispatchId, 2)
        if (existing.length === 1 && existing[0]?.workflow_run_id === this.workflowRunId) return existing[0]
        throw error
      }
    })
    return this.checkColumns(row)
  }

  /**
   * Takes the row for this run: one conditional update that only matches a row no run has
   * claimed yet, so of two runs dispatched with the same id exactly one wins. A row this run
   * already holds (a retried claim, or a re-run attempt: attempts share the run id and never
   * overlap) counts as claimed.
   */
  async claim(row: BackupRow): Promise<ClaimResult> {
    const changed = await this.withRetry(() => this.backend.updateIfInProgress(row.id, { workflow_run_id: this.workflowRunId }, null))
    if (changed[0]) return { claimed: true, row: changed[0] }
    const current = await this.reread(row.id)
    if (current.status === 'in_progress' && current.workflow_run_id === this.workflowRunId) return { claimed: true, row: current }
    if (current.status === 'in_progress' && current.workflow_run_id === null) throw this.cannotUpdate(row.id)
    return { claimed: false, row: current }
  }

  /** Moves a row this run claimed to its terminal status. */
  async finalize(rowId: string, outcome: Outcome): Promise<FinalizeResult> {
    const patch = terminalPatch(outcome, this.workflowRunId, new Date())
    try {
      return await this.write(rowId, patch, this.workflowRunId)
    } catch (error) {
      // A verified backup is still recorded where the sha256 column (or the function's field) is
      // missing: the hash is in the outputs and the job summary, and the log says what to apply.
      if (patch.status !== 'success' || !(error instanceof LedgerError) || error.transient || !/sha256/.test(error.message)) throw error
      this.onRetry(
        `The ${this.table} row cannot take the archive's sha256 (${error.message}); recording the backup without it. Apply supabase/migrations/009_add_sha256_to_backup_history.sql and redeploy the update-backup function.`
      )
      const { sha256: _unrecorded, ...withoutSha256 } = patch
      return this.write(rowId, withoutSha256, this.workflowRunId)
    }
  }

  /**
   * The sweep's move: fails a row whose run ended without finalizing it, or that no run took
   * in time. Only matches while the row is still held by the run the sweep checked.
   */
  async failAbandoned(row: BackupRow, errorText: string): Promise<FinalizeResult> {
    const patch = terminalPatch({ status: 'failed', errorText }, row.workflow_run_id ?? this.workflowRunId, new Date())
    return this.write(row.id, patch, row.workflow_run_id)
  }

  private async write(rowId: string, patch: RowPatch, owner: string | null): Promise<FinalizeResult> {
    const changed = await this.withRetry(() => this.backend.updateIfInProgress(rowId, patch, owner))
    if (changed[0]) return { written: true, row: changed[0] }
    const row = await this.reread(rowId)
    if (row.status === 'in_progress' && row.workflow_run_id === owner) throw this.cannotUpdate(rowId)
    return { written: false, row }
  }

  private checkColumns(row: BackupRow): BackupRow {
    const missing = REQUIRED_COLUMNS.filter(column => !(column in row))
    if (missing.length > 0) {
      throw new LedgerError(
        `The table '${this.table}' (input 'table') has no column ${missing.join(', ')}. Apply every file of supabase/migrations (008 adds finished_at), or set 'table' to the table they created.`
      )
    }
    return row
  }

  private cannotUpdate(rowId: string): LedgerError {
    return new LedgerError(
      `The ${this.table} row ${rowId} is still in_progress but the update changed nothing: the role of 'supabase-key' can read the row but not update it. Give it an UPDATE grant and an RLS policy, or use the project's secret key.`
    )
  }

  async get(rowId: string): Promise<BackupRow> {
    return this.reread(rowId)
  }

  private async reread(rowId: string): Promise<BackupRow> {
    const row = await this.withRetry(() => this.backend.getById(rowId))
    if (!row) throw new LedgerError(`The ${this.table} row ${rowId} disappeared (deleted, or hidden by RLS) while the backup ran.`)
    return row
  }

  private withRetry<T>(attempt: () => Promise<T>): Promise<T> {
    return retry(attempt, isTransient, this.retryPolicy, (error, delayMs) =>
      this.onRetry(
        `Database not reachable (${error instanceof Error ? error.message : String(error)}); retrying in ${Math.round(delayMs / 100) / 10} s.`
      )
    )
  }
}
