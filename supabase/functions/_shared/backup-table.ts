// backup_history through PostgREST with the project's admin key (auth.ts), the way every backup
// function writes it: inserts of in_progress rows and the state machine's one conditional UPDATE.
// A function may also read it as a signed-in user, so that the table's own RLS decides what they see.
import { adminHeaders, adminKeyRefused, readAdminKey, unauthorized, type AdminKey, type Env } from './auth.ts'
import { clip, HttpError } from './http.ts'

export type Status = 'in_progress' | 'success' | 'failed'

/** As src/ledger.ts reads it; the functions are deployed on their own, so they cannot import that. */
export interface BackupRow {
  id: string
  dispatch_id: string | null
  status: Status
  s3_key: string | null
  size_bytes: number | null
  workflow_run_id: string | null
  error_text: string | null
  created_at: string
  finished_at: string | null
  /** The archive's SHA-256 (migration 009), set with the move to success. */
  sha256?: string | null
  /** The job whose claim holds the row (migration 010). */
  claimed_by?: string | null
  /** When the prune deleted the row's object (migration 011). */
  expired_at?: string | null
}

/** One page of a prefix's success rows, newest first. */
export interface SuccessPage {
  prefix: string
  limit: number
  offset: number
  /** Only rows finished at or before this instant, so rows finishing meanwhile do not shift the pages. */
  finishedNotAfter: string | undefined
}

export interface TableConfig {
  supabaseUrl: string
  admin: AdminKey
  table: string
}

export type Target = { backupId: string } | { dispatchId: string }

/**
 * Whose rights the requests run with: the admin key (every row), or a signed-in user's access
 * token with the project's public key as `apikey`, so that the table's RLS decides what they see.
 */
export type Identity = { kind: 'admin' } | { kind: 'user'; token: string; publicKey: string }

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** Below the action's own 10 s request timeout, so it gets a 503 to retry rather than silence. */
const UPSTREAM_TIMEOUT_MS = 8_000

/** SUPABASE_URL, the admin key (auth.ts) and BACKUP_TABLE from the function's environment, or a 500 naming what is missing. */
export function readTableConfig(env: Env): TableConfig {
  const supabaseUrl = env('SUPABASE_URL').replace(/\/+$/, '')
  if (!supabaseUrl) throw new HttpError(500, 'misconfigured', 'SUPABASE_URL is not set in the function environment.')
  const table = env('BACKUP_TABLE') || 'backup_history'
  if (!TABLE_NAME.test(table)) throw new HttpError(500, 'misconfigured', 'BACKUP_TABLE must be a plain table name.')
  return { supabaseUrl, admin: readAdminKey(env), table }
}

export class BackupTable {
  constructor(
    private readonly config: TableConfig,
    private readonly identity: Identity = { kind: 'admin' }
  ) {}

  /** The row with this id, or undefined when there is none the identity may select (RLS, or no grant). */
  async visible(id: string): Promise<BackupRow | undefined> {
    try {
      const [row] = await this.request<BackupRow[]>('GET', `select=*&id=eq.${id}`)
      return row
    } catch (error) {
      if (error instanceof UpstreamError && error.pgCode === '42501') return undefined
      throw error
    }
  }

  /** The one row a target names: 404 when none, 409 when a dispatch_id matches several. */
  async find(target: Target): Promise<BackupRow> {
    const filter = 'backupId' in target ? `id=eq.${target.backupId}` : `dispatch_id=eq.${target.dispatchId}`
    const rows = await this.request<BackupRow[]>('GET', `select=*&${filter}&order=created_at.asc&limit=2`)
    const what = 'backupId' in target ? `id ${target.backupId}` : `dispatch_id ${target.dispatchId}`
    if (rows.length === 0) throw new HttpError(404, 'row_not_found', `No ${this.config.table} row has ${what}.`)
    if (rows.length > 1) {
      throw new HttpError(409, 'ambiguous', `More than one ${this.config.table} row has ${what}; add the unique constraint on dispatch_id.`)
    }
    return rows[0] as BackupRow
  }

  get(id: string): Promise<BackupRow> {
    return this.find({ backupId: id })
  }

  /** The insert, or undefined when the dispatch_id is taken. */
  async insert(row: Record<string, unknown>): Promise<BackupRow | undefined> {
    try {
      const [created] = await this.request<BackupRow[]>('POST', 'select=*', row)
      return created
    } catch (error) {
      if (error instanceof UpstreamError && error.pgCode === '23505') return undefined
      throw error
    }
  }

  /** in_progress rows, oldest first: what the sweep judges. */
  listInProgress(limit: number): Promise<BackupRow[]> {
    return this.request<BackupRow[]>('GET', `select=*&status=eq.in_progress&order=created_at.asc&limit=${limit}`)
  }

  /**
   * A prefix's success rows, expired or not, newest first. LIKE with its wildcards escaped; a '*'
   * in the prefix (PostgREST's wildcard) matches any one character, so callers check the prefix.
   */
  listSuccess(page: SuccessPage): Promise<BackupRow[]> {
    const pattern = `${page.prefix.replace(/[\\%_]/g, match => `\\${match}`).replace(/\*/g, '_')}*`
    const notAfter = page.finishedNotAfter === undefined ? '' : `&finished_at=lte.${encodeURIComponent(page.finishedNotAfter)}`
    return this.request<BackupRow[]>(
      'GET',
      `select=*&status=eq.success&s3_key=like.${encodeURIComponent(pattern)}${notAfter}&order=finished_at.desc,id.desc&limit=${page.limit}&offset=${page.offset}`
    )
  }

  /**
   * The one change a finished row takes (migration 011): `UPDATE ... SET expired_at = now() WHERE
   * id = $1 AND status = 'success' AND expired_at IS NULL RETURNING *`. The database stamps the time.
   */
  expireIfSuccess(id: string): Promise<BackupRow[]> {
    return this.request<BackupRow[]>('PATCH', `select=*&id=eq.${id}&status=eq.success&expired_at=is.null`, {
      expired_at: new Date().toISOString()
    })
  }

  /** `UPDATE ... WHERE id = $1 AND status = 'in_progress' [AND condition] RETURNING *`: the state machine's write. */
  updateIfInProgress(id: string, patch: Record<string, unknown>, condition = ''): Promise<BackupRow[]> {
    return this.request<BackupRow[]>('PATCH', `select=*&id=eq.${id}&status=eq.in_progress${condition ? `&${condition}` : ''}`, patch)
  }

  /**
   * Names the run that holds an in_progress row no run holds yet (`... AND workflow_run_id IS NULL`): the
   * action's claim, and trigger-backup's record of the run it started. Of two such writes, one changes the row.
   */
  holdForRun(id: string, runId: string): Promise<BackupRow[]> {
    return this.updateIfInProgress(id, { workflow_run_id: runId }, 'workflow_run_id=is.null')
  }

  private async request<T>(method: string, query: string, body?: unknown): Promise<T> {
    const { supabaseUrl, admin, table } = this.config
    let response: Response
    try {
      response = await fetch(`${supabaseUrl}/rest/v1/${table}?${query}`, {
        method,
        headers: {
          ...(this.identity.kind === 'admin'
            ? adminHeaders(admin)
            : { apikey: this.identity.publicKey, authorization: `Bearer ${this.identity.token}` }),
          'content-type': 'application/json',
          prefer: 'return=representation'
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS)
      })
    } catch {
      throw new HttpError(503, 'database_unavailable', 'The database API did not answer; retry later.')
    }
    const text = await response.text()
    if (response.ok) return JSON.parse(text) as T
    const failure = parseFailure(text)
    if (response.status >= 500 || failure.code.startsWith('PGRST00')) {
      throw new HttpError(503, 'database_unavailable', `The database is not available (HTTP ${response.status}); retry later.`)
    }
    if (this.identity.kind === 'user' && failure.code.startsWith('PGRST30')) {
      throw unauthorized('invalid_token', `The database API refused the access token: ${failure.message}`)
    }
    // A user's role without a grant on the table (42501) is the caller's to handle; the admin key refused is a 500.
    if ((response.status === 401 || response.status === 403) && this.identity.kind === 'admin') {
      throw adminKeyRefused(admin, response.status, failure.message)
    }
    if (failure.code === 'PGRST205' || failure.code === '42P01') {
      throw new HttpError(500, 'misconfigured', `Table '${table}' does not exist: apply supabase/migrations, or set BACKUP_TABLE.`)
    }
    throw new UpstreamError(response.status, failure.code, failure.message)
  }
}

/** A PostgREST error the caller may handle (a unique violation on insert); else answered as a 500. */
export class UpstreamError extends HttpError {
  constructor(
    upstreamStatus: number,
    readonly pgCode: string,
    message: string
  ) {
    super(500, 'upstream_error', `The database API answered HTTP ${upstreamStatus}${pgCode ? ` ${pgCode}` : ''}: ${message}`)
  }
}

function parseFailure(text: string): { code: string; message: string } {
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown }
    return { code: typeof body.code === 'string' ? body.code : '', message: typeof body.message === 'string' ? clip(body.message) : '' }
  } catch {
    return { code: '', message: clip(text) }
  }
}
