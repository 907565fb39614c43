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
  /** The claim's job (migration 010, `<run id>/<attempt>/<job>/<nonce>`); absent from tables that predate it. */
  claimed_by?: string | null
  /** The key the claiming job is uploading to (migration 010): what a finalizer aborts when its runner was lost. */
  upload_key?: string | null
  /** When the prune deleted the row's object (migration 011); absent from tables that predate it. */
  expired_at?: string | null
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

/** The writes there are: a claim (the run id, and the job's token, while the row stays in_progress) and the terminal moves. */
export type RowPatch = { workflow_run_id: string; claimed_by?: string; upload_key?: string } | TerminalPatch

/**
 * Who a write expects to hold the row: it only applies while the row's workflow_run_id (and, when
 * `claimedBy` is set, its claimed_by) are exactly these. `claimedBy` undefined: not compared (a
 * table or function from before migration 010). null means "nobody".
 */
export interface Holder {
  runId: string | null
  claimedBy?: string | null
}

/** Who this ledger writes as: the run, and for a backup job, the token its claim carries. */
export interface Writer {
  runId: string
  /** `<run id>/<attempt>/<job>/<nonce>`: tells the jobs (matrix legs) of one run attempt apart. */
  claimToken?: string
}

/** A claim token for one job of one run attempt; `nonce` tells apart two legs of one matrix job. */
export function claimToken(runId: string, runAttempt: string, job: string, nonce: string): string {
  return [runId, runAttempt, job, nonce]
    .map(part => part.replace(/\//g, '_'))
    .join('/')
    .slice(0, 200)
}

/** The run attempt a claim token names, or undefined for a token not in that form. */
function attemptOf(token: string, runId: string): number | undefined {
  const [tokenRun, attempt] = token.split('/')
  return tokenRun === runId && attempt !== undefined && /^\d+$/.test(attempt) ? Number(attempt) : undefined
}

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
   * `UPDATE ... SET patch WHERE id = $id AND status = 'in_progress' AND workflow_run_id = $runId
   * [AND claimed_by = $claimedBy] RETURNING *` (IS NULL for null): the rows it changed.
   */
  updateIfInProgress(id: string, patch: RowPatch, holder: Holder): Promise<BackupRow[]>
  /**
   * The one change a finished row takes (migration 011): `UPDATE ... SET expired_at = now() WHERE
   * id = $id AND status = 'success' AND expired_at IS NULL RETURNING *`: the rows it changed.
   */
  expireIfSuccess(id: string): Promise<BackupRow[]>
}

/** What the sweep needs besides the conditional update: the rows still in_progress. */
export interface InProgressSource {
  /** in_progress rows, oldest first; at most `limit`. */
  listInProgress(limit: number): Promise<BackupRow[]>
}

/** One page of a prefix's success rows, newest first (finished_at, then id, descending). */
export interface SuccessPage {
  /** Only rows whose s3_key starts with this. */
  prefix: string
  limit: number
  offset: number
  /** Only rows that finished at or before this instant: rows finishing while the prune pages do not shift its pages. */
  finishedNotAfter: string | undefined
}

/**
 * A PostgREST `like` pattern for keys that start with `prefix`: LIKE's own wildcards escaped, and
 * PostgREST's `*` (which it turns into `%`) as `_`, any one character; callers check the prefix itself.
 */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, match => `\\${match}`).replace(/\*/g, '_')}*`
}

/** What the prune needs besides the conditional updates: a prefix's success rows, expired or not. */
export interface SuccessSource {
  /** At most `limit` rows; fewer only on the last page. LIKE narrows, so a row may not start with the prefix: callers check. */
  listSuccess(page: SuccessPage): Promise<BackupRow[]>
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

export type ExpireResult =
  /** This call set expired_at: the row now says its object is gone, so the object may be deleted. */
  | { expired: true; row: BackupRow }
  /** Nothing changed: the row as it is (expired meanwhile by another prune, or not a success row). */
  | { expired: false; row: BackupRow }

export type ClaimResult =
  | { claimed: true; row: BackupRow }
  /**
   * Not ours: the row is finished, or in_progress and held by another run (`row.workflow_run_id`),
   * or by another job of this same run attempt (`row.claimed_by`: two legs of a matrix).
   */
  | { claimed: false; row: BackupRow; heldBy: 'nobody' | 'another-run' | 'another-job' }

/** How many times a claim re-reads a row that changed under it before giving up. */
const CLAIM_ATTEMPTS = 3

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
    private readonly writer: Writer,
    private readonly retryPolicy: RetryPolicy,
    private readonly onRetry: (message: string) => void = () => {}
  ) {}

  /** Rows this ledger claimed, by id, with the holder its later writes expect. */
  private readonly claims = new Map<string, Holder>()

  private get workflowRunId(): string {
    return this.writer.runId
  }

  /** The one row with this dispatch id. Zero or several rows is an error naming the dispatch id. */
  async locate(dispatchId: string): Promise<BackupRow> {
    const row = await this.find(dispatchId)
    if (!row) {
      throw new LedgerError(
        `No ${this.table} row has dispatch_id ${dispatchId}. Check that the app inserted the row before dispatching the workflow, that the workflow passes that same dispatch_id to 'dispatch-id', and ${this.backend.visibilityHint}.`
      )
    }
    return row
  }

  /** The row with this dispatch id, or undefined when there is none. Several rows is an error naming the dispatch id. */
  async find(dispatchId: string): Promise<BackupRow | undefined> {
    const rows = await this.withRetry(() => this.backend.findByDispatchId(dispatchId, 2))
    if (rows.length > 1) {
      throw new LedgerError(
        `More than one ${this.table} row has dispatch_id ${dispatchId}; refusing to guess which to finalize. Add the unique constraint on dispatch_id from supabase/migrations.`
      )
    }
    return rows[0] && this.checkColumns(rows[0])
  }

  /**
   * A new in_progress row for scheduled runs; `created: false` with the row that already has this
   * dispatch id (another writer's), which the caller must not take for a fresh one.
   */
  async create(dispatchId: string): Promise<{ created: boolean; row: BackupRow }> {
    const result = await this.withRetry(async () => {
      try {
        return { created: true, row: await this.backend.insert({ dispatch_id: dispatchId, workflow_run_id: this.workflowRunId }) }
      } catch (error) {
        const existing = await this.backend.findByDispatchId(dispatchId, 2)
        // A retried insert whose first attempt committed: the row is ours.
        if (existing.length === 1 && existing[0]?.workflow_run_id === this.workflowRunId) return { created: true, row: existing[0] }
        if (existing.length === 1 && existing[0]) return { created: false, row: existing[0] }
        throw error
      }
    })
    return { created: result.created, row: this.checkColumns(result.row) }
  }

  /**
   * Takes the row for this job: one conditional update that only matches the row as it was read,
   * so of two runs (or two jobs of one run) dispatched with the same id exactly one wins. A row
   * this run already holds without a job's token (trigger-backup wrote the run id, or a table
   * from before migration 010), or that an earlier attempt of this run held, is taken over:
   * attempts never overlap.
   */
  async claim(row: BackupRow): Promise<ClaimResult> {
    const token = this.writer.claimToken
    if (token === undefined || !('claimed_by' in row)) return this.claimByRun(row)
    let current = row
    for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
      const verdict = this.claimVerdict(current, token)
      if (verdict !== 'take') return verdict
      const holder: Holder = { runId: current.workflow_run_id, claimedBy: current.claimed_by ?? null }
      let changed: BackupRow[]
      try {
        changed = await this.withRetry(() =>
          this.backend.updateIfInProgress(current.id, { workflow_run_id: this.workflowRunId, claimed_by: token }, holder)
        )
      } catch (error) {
        // An update-backup function deployed before claimed_by existed refuses the field.
        if (!(error instanceof LedgerError) || error.transient || !/claimed_by|holder/.test(error.message)) throw error
        this.onRetry(
          `The update-backup function does not know claimed_by (${error.message}); claiming by run id only, so two jobs of one run are not told apart. Redeploy the function from this version.`
        )
        return this.claimByRun(current)
      }
      if (changed[0]) {
        this.claims.set(current.id, { runId: this.workflowRunId, claimedBy: token })
        return { claimed: true, row: changed[0] }
      }
      current = await this.reread(current.id)
      const unchanged =
        current.status === 'in_progress' && current.workflow_run_id === holder.runId && (current.claimed_by ?? null) === holder.claimedBy
      if (unchanged) throw this.cannotUpdate(current.id)
    }
    throw new LedgerError(`The ${this.table} row ${row.id} kept changing while this job claimed it; re-run the job.`)
  }

  /** Whether this job may take the row as read, or the claim's answer when it may not. */
  private claimVerdict(row: BackupRow, token: string): 'take' | ClaimResult {
    if (row.status !== 'in_progress') return { claimed: false, row, heldBy: 'nobody' }
    if (row.workflow_run_id !== null && row.workflow_run_id !== this.workflowRunId) return { claimed: false, row, heldBy: 'another-run' }
    const holder = row.claimed_by ?? null
    if (holder === token) {
      this.claims.set(row.id, { runId: this.workflowRunId, claimedBy: token })
      return { claimed: true, row }
    }
    if (holder === null) return 'take'
    const theirs = attemptOf(holder, this.workflowRunId)
    const ours = attemptOf(token, this.workflowRunId)
    if (theirs !== undefined && ours !== undefined && theirs < ours) return 'take'
    return { claimed: false, row, heldBy: 'another-job' }
  }

  /** The claim before migration 010: the run id alone, so jobs of one run cannot be told apart. */
  private async claimByRun(row: BackupRow): Promise<ClaimResult> {
    const changed = await this.withRetry(() =>
      this.backend.updateIfInProgress(row.id, { workflow_run_id: this.workflowRunId }, { runId: null })
    )
    const claimed = (current: BackupRow): ClaimResult => {
      this.claims.set(current.id, { runId: this.workflowRunId })
      return { claimed: true, row: current }
    }
    if (changed[0]) return claimed(changed[0])
    const current = await this.reread(row.id)
    if (current.status === 'in_progress' && current.workflow_run_id === this.workflowRunId) return claimed(current)
    if (current.status === 'in_progress' && current.workflow_run_id === null) throw this.cannotUpdate(row.id)
    return { claimed: false, row: current, heldBy: current.status === 'in_progress' ? 'another-run' : 'nobody' }
  }

  /**
   * Records on the row the key this job starts uploading to, so that a finalizer can abort the
   * upload should the runner be lost. Best effort: one attempt, and false (with the reason
   * logged) where the table or the function predates migration 010, or the write fails.
   */
  async recordUploadKey(row: BackupRow, key: string): Promise<boolean> {
    const holder = this.claims.get(row.id)
    if (!holder?.claimedBy || !('upload_key' in row)) return false
    try {
      const changed = await this.backend.updateIfInProgress(
        row.id,
        { workflow_run_id: this.workflowRunId, claimed_by: holder.claimedBy, upload_key: key },
        holder
      )
      return changed.length > 0
    } catch (error) {
      this.onRetry(
        `Could not record the upload's key on the row (${error instanceof Error ? error.message : String(error)}); should this runner be lost, its unfinished upload is left to the bucket's lifecycle rule.`
      )
      return false
    }
  }

  /**
   * Moves a row this job claimed to its terminal status. A row claimed in another process (post
   * finishing main's work) is read first, to write with the holder main's claim left.
   */
  async finalize(rowId: string, outcome: Outcome): Promise<FinalizeResult> {
    const holder = this.claims.get(rowId) ?? (await this.holderOf(rowId))
    if ('row' in holder) return { written: false, row: holder.row }
    const patch = terminalPatch(outcome, this.workflowRunId, new Date())
    try {
      return await this.write(rowId, patch, holder)
    } catch (error) {
      // A verified backup is still recorded where the sha256 column (or the function's field) is
      // missing: the hash is in the outputs and the job summary, and the log says what to apply.
      if (patch.status !== 'success' || !(error instanceof LedgerError) || error.transient || !/sha256/.test(error.message)) throw error
      this.onRetry(
        `The ${this.table} row cannot take the archive's sha256 (${error.message}); recording the backup without it. Apply supabase/migrations/009_add_sha256_to_backup_history.sql and redeploy the update-backup function.`
      )
      const { sha256: _unrecorded, ...withoutSha256 } = patch
      return this.write(rowId, withoutSha256, holder)
    }
  }

  /** The holder this job's claim left on the row, or the row itself when another job holds it. */
  private async holderOf(rowId: string): Promise<Holder | { row: BackupRow }> {
    const row = await this.reread(rowId)
    const token = this.writer.claimToken
    if (token === undefined || !('claimed_by' in row) || row.claimed_by === null) return { runId: this.workflowRunId }
    if (row.claimed_by === token) return { runId: this.workflowRunId, claimedBy: token }
    // Held by another job, or finished: this job has nothing to write.
    if (row.status === 'in_progress') return { row }
    return { runId: this.workflowRunId, claimedBy: token }
  }

  /**
   * The sweep's move: fails a row whose run ended without finalizing it, or that no run took
   * in time. Only matches while the row is still held as the sweep read it.
   */
  async failAbandoned(row: BackupRow, errorText: string): Promise<FinalizeResult> {
    const patch = terminalPatch({ status: 'failed', errorText }, row.workflow_run_id ?? this.workflowRunId, new Date())
    const holder: Holder =
      'claimed_by' in row ? { runId: row.workflow_run_id, claimedBy: row.claimed_by ?? null } : { runId: row.workflow_run_id }
    return this.write(row.id, patch, holder)
  }

  /**
   * The prune's move, the one change a finished row takes: a success row records that its object
   * is (about to be) gone. One conditional update; a row that is not success, or already expired,
   * is left as it is and returned.
   */
  async markExpired(row: BackupRow): Promise<ExpireResult> {
    if (!('expired_at' in row)) {
      throw new LedgerError(
        `The table '${this.table}' (input 'table') has no column expired_at. Apply supabase/migrations/011_add_expired_at_to_backup_history.sql (and redeploy the update-backup function) before pruning.`
      )
    }
    const changed = await this.withRetry(() => this.backend.expireIfSuccess(row.id))
    if (changed[0]) return { expired: true, row: changed[0] }
    return { expired: false, row: await this.reread(row.id) }
  }

  private async write(rowId: string, patch: RowPatch, holder: Holder): Promise<FinalizeResult> {
    const changed = await this.withRetry(() => this.backend.updateIfInProgress(rowId, patch, holder))
    if (changed[0]) return { written: true, row: changed[0] }
    const row = await this.reread(rowId)
    if (
      row.status === 'in_progress' &&
      row.workflow_run_id === holder.runId &&
      (holder.claimedBy === undefined || (row.claimed_by ?? null) === holder.claimedBy)
    )
      throw this.cannotUpdate(rowId)
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
