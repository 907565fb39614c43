// update-backup: the least-privilege way for CI to report a backup. The workflow holds only
// BACKUP_API_KEY; this function holds the service role key and applies backup_history's state
// machine itself (in_progress -> success | failed, one conditional UPDATE per write, a finished
// row never changes again), so a leaked CI secret can do no more than report backups.
//
// Deploy with JWT verification off (supabase/config.toml sets verify_jwt = false): callers send
// `Authorization: Bearer <BACKUP_API_KEY>`, which is not a Supabase JWT.
// Secrets: BACKUP_API_KEY (set it yourself, 32+ characters); SUPABASE_URL and
// SUPABASE_SERVICE_ROLE_KEY (provided by Supabase); BACKUP_TABLE (optional, default backup_history).
//
// One endpoint, POST with a JSON body; `action` picks the call (default `finalize`, so seed 000's
// body `{backup_id, s3_key, size_bytes, workflow_run_id}` marks the row success):
//   {action: 'lookup',   backup_id | dispatch_id}                         200 {backup}
//   {action: 'create',   dispatch_id?, workflow_run_id}                   201 {backup, created: true}
//   {action: 'claim',    backup_id | dispatch_id, workflow_run_id}        200 {backup, updated} (only an unclaimed row, or ours)
//   {action: 'finalize', backup_id | dispatch_id, workflow_run_id,
//      status: 'success' (default), s3_key, size_bytes | status: 'failed', error_text}
//                                                                        200 {backup, updated}
// Errors are {error, code[, backup]}: 400 bad request, 401 bad key (invalid_api_key), 404 no such row (row_not_found), 405 not POST,
// 409 the row is finished with another result (or several rows share the dispatch_id),
// 413 body too large, 500 misconfigured, 503 database unavailable (retry).

type Status = 'in_progress' | 'success' | 'failed'

/** As src/ledger.ts reads it; the function is deployed on its own, so it cannot import that. */
interface BackupRow {
  id: string
  dispatch_id: string | null
  status: Status
  s3_key: string | null
  size_bytes: number | null
  workflow_run_id: string | null
  error_text: string | null
  created_at: string
  finished_at: string | null
}

interface Config {
  supabaseUrl: string
  serviceRoleKey: string
  apiKey: string
  table: string
}

type Target = { backupId: string } | { dispatchId: string }

/** What a finalize request reports; `invalid` says why a reported success cannot be recorded. */
type Result = { status: 'success'; s3Key: string; sizeBytes: number } | { status: 'failed'; errorText: string } | { invalid: string }

type Call =
  | { action: 'lookup'; target: Target }
  | { action: 'create'; dispatchId: string; workflowRunId: string }
  | { action: 'claim'; target: Target; workflowRunId: string }
  | { action: 'finalize'; target: Target; workflowRunId: string; result: Result }

const ACTIONS = ['lookup', 'create', 'claim', 'finalize'] as const
const FIELDS: Record<Call['action'], string[]> = {
  lookup: ['backup_id', 'dispatch_id'],
  create: ['dispatch_id', 'workflow_run_id'],
  claim: ['backup_id', 'dispatch_id', 'workflow_run_id'],
  finalize: ['backup_id', 'dispatch_id', 'workflow_run_id', 'status', 's3_key', 'size_bytes', 'error_text']
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const RUN_ID = /^[\x21-\x7e]{1,100}$/
const MIN_API_KEY_LENGTH = 32
const MAX_BODY_BYTES = 64 * 1024
/** The table's check constraint. */
const MAX_ERROR_TEXT = 1000
/** Below the action's own 10 s request timeout, so it gets a 503 to retry rather than silence. */
const UPSTREAM_TIMEOUT_MS = 8_000

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly backup?: BackupRow
  ) {
    super(message)
  }
}

Deno.serve(async request => {
  try {
    return await handle(request)
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error)
    console.error('update-backup: unexpected error', error instanceof Error ? error.message : String(error))
    return json(500, { error: 'Unexpected error in update-backup; see the function logs.', code: 'internal' })
  }
})

async function handle(request: Request): Promise<Response> {
  if (request.method !== 'POST') {
    throw new HttpError(405, 'method_not_allowed', `Use POST with a JSON body, not ${request.method}.`)
  }
  const config = readConfig()
  await authenticate(request, config)
  const call = parseCall(await readJson(request))
  const response = await perform(call, config)
  console.log(`update-backup: ${call.action} -> ${response.status}`)
  return response
}

function readConfig(): Config {
  const env = (name: string): string => (Deno.env.get(name) ?? '').trim()
  const config = {
    supabaseUrl: env('SUPABASE_URL').replace(/\/+$/, ''),
    serviceRoleKey: env('SUPABASE_SERVICE_ROLE_KEY'),
    apiKey: env('BACKUP_API_KEY'),
    table: env('BACKUP_TABLE') || 'backup_history'
  }
  // Refuse to run half-configured: without a strong BACKUP_API_KEY nobody may write.
  if (config.apiKey.length < MIN_API_KEY_LENGTH) {
    throw new HttpError(
      500,
      'misconfigured',
      `The function's BACKUP_API_KEY secret is ${config.apiKey ? 'too short' : 'not set'}: set one of ${MIN_API_KEY_LENGTH}+ characters (supabase secrets set BACKUP_API_KEY=$(openssl rand -hex 32)).`
    )
  }
  if (!config.supabaseUrl || !config.serviceRoleKey) {
    throw new HttpError(500, 'misconfigured', 'SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY is not set in the function environment.')
  }
  if (!TABLE_NAME.test(config.table)) throw new HttpError(500, 'misconfigured', 'BACKUP_TABLE must be a plain table name.')
  return config
}

async function authenticate(request: Request, config: Config): Promise<void> {
  const header = request.headers.get('authorization') ?? ''
  const match = /^Bearer\s+(.+)$/i.exec(header)
  if (!match) throw new HttpError(401, 'invalid_api_key', 'Send the API key as "Authorization: Bearer <BACKUP_API_KEY>".')
  if (!(await constantTimeEqual((match[1] ?? '').trim(), config.apiKey))) {
    throw new HttpError(401, 'invalid_api_key', 'Invalid API key: it must equal the BACKUP_API_KEY secret of this function.')
  }
}

/** Compares SHA-256 digests byte by byte without early exit: the time says nothing about the key. */
async function constantTimeEqual(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  const [a, b] = await Promise.all([digest(given), digest(expected)])
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return difference === 0
}

async function readJson(request: Request): Promise<Record<string, unknown>> {
  const body = new Uint8Array(await request.arrayBuffer())
  if (body.byteLength > MAX_BODY_BYTES) throw new HttpError(413, 'too_large', `The request body exceeds ${MAX_BODY_BYTES} bytes.`)
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder().decode(body))
  } catch {
    throw new HttpError(400, 'invalid_json', 'The request body must be a JSON object.')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, 'invalid_json', 'The request body must be a JSON object.')
  }
  return parsed as Record<string, unknown>
}

/** The request's call, or a 400 naming the field. Nothing is written for these errors. */
function parseCall(body: Record<string, unknown>): Call {
  const action = body.action ?? 'finalize'
  if (!ACTIONS.includes(action as Call['action'])) {
    throw badRequest(`'action' must be one of ${ACTIONS.join(', ')}.`)
  }
  const allowed = FIELDS[action as Call['action']]
  const unknown = Object.keys(body).filter(field => field !== 'action' && !allowed.includes(field))
  if (unknown.length > 0)
    throw badRequest(`Unknown field '${clip(unknown[0] ?? '')}' for action '${action}'; allowed: ${allowed.join(', ')}.`)

  switch (action as Call['action']) {
    case 'lookup':
      return { action: 'lookup', target: parseTarget(body) }
    case 'create': {
      const dispatchId = body.dispatch_id === undefined ? crypto.randomUUID() : parseUuid(body.dispatch_id, 'dispatch_id')
      return { action: 'create', dispatchId, workflowRunId: parseRunId(body.workflow_run_id) }
    }
    case 'claim':
      return { action: 'claim', target: parseTarget(body), workflowRunId: parseRunId(body.workflow_run_id) }
    case 'finalize':
      return { action: 'finalize', target: parseTarget(body), workflowRunId: parseRunId(body.workflow_run_id), result: parseResult(body) }
  }
}

function parseTarget(body: Record<string, unknown>): Target {
  if (body.backup_id !== undefined && body.dispatch_id !== undefined) throw badRequest("Send 'backup_id' or 'dispatch_id', not both.")
  if (body.backup_id !== undefined) return { backupId: parseUuid(body.backup_id, 'backup_id') }
  if (body.dispatch_id !== undefined) return { dispatchId: parseUuid(body.dispatch_id, 'dispatch_id') }
  throw badRequest("'backup_id' or 'dispatch_id' is required to identify the row.")
}

function parseUuid(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw badRequest(`'${field}' must be a UUID.`)
  return value.toLowerCase()
}

function parseRunId(value: unknown): string {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value
  if (typeof text !== 'string' || !RUN_ID.test(text)) {
    throw badRequest("'workflow_run_id' is required: the GitHub run id (github.run_id), up to 100 printable characters.")
  }
  return text
}

/** A reported result. An unusable one is not a 400 yet: the row it names is failed with why (seed 000). */
function parseResult(body: Record<string, unknown>): Result {
  const status = body.status ?? 'success'
  if (status === 'failed') {
    if (body.s3_key !== undefined || body.size_bytes !== undefined)
      throw badRequest("A 'failed' report carries 'error_text', not 's3_key' or 'size_bytes'.")
    const errorText = typeof body.error_text === 'string' ? body.error_text.trim() : ''
    if (!errorText) return { invalid: "The backup workflow reported a failure without 'error_text'." }
    return { status: 'failed', errorText }
  }
  if (status !== 'success') throw badRequest("'status' must be 'success' or 'failed'.")
  if (body.error_text !== undefined) throw badRequest("A 'success' report carries 's3_key' and 'size_bytes', not 'error_text'.")
  const s3Key = typeof body.s3_key === 'string' ? body.s3_key.trim() : ''
  if (!s3Key) return { invalid: "The backup workflow reported success without an 's3_key', so the backup cannot be found in the store." }
  if (new TextEncoder().encode(s3Key).byteLength > 1024)
    return { invalid: "The backup workflow reported an 's3_key' longer than S3's 1024 bytes." }
  const sizeBytes = typeof body.size_bytes === 'string' && /^\d{1,15}$/.test(body.size_bytes) ? Number(body.size_bytes) : body.size_bytes
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
    return { invalid: "The backup workflow reported success without a valid 'size_bytes' (a whole number of bytes)." }
  }
  return { status: 'success', s3Key, sizeBytes }
}

async function perform(call: Call, config: Config): Promise<Response> {
  const db = new Table(config)
  switch (call.action) {
    case 'lookup':
      return json(200, { backup: await db.find(call.target) })
    case 'create':
      return create(db, call.dispatchId, call.workflowRunId)
    case 'claim': {
      const { id } = await db.find(call.target)
      // Only a row no run holds yet: of two runs dispatched with one id, exactly one claims it.
      const [claimed] = await db.updateIfInProgress(id, { workflow_run_id: call.workflowRunId }, 'workflow_run_id=is.null')
      if (claimed) return json(200, { backup: claimed, updated: true })
      const current = await db.get(id)
      // Held already: by this run (a retried claim, a re-run attempt), or by another, which keeps it.
      if (current.status === 'in_progress') return json(200, { backup: current, updated: current.workflow_run_id === call.workflowRunId })
      throw new HttpError(
        409,
        'already_finished',
        `Backup ${id} is already ${current.status}; a finished row is never claimed again.`,
        current
      )
    }
    case 'finalize':
      return finalize(db, call.target, call.workflowRunId, call.result)
  }
}

async function create(db: Table, dispatchId: string, workflowRunId: string): Promise<Response> {
  const inserted = await db.insert({ dispatch_id: dispatchId, workflow_run_id: workflowRunId, status: 'in_progress' })
  if (inserted) return json(201, { backup: inserted, created: true })
  // The dispatch_id is taken: a retry of this same create is answered with its row.
  const existing = await db.find({ dispatchId })
  if (existing.status === 'in_progress' && existing.workflow_run_id === workflowRunId)
    return json(200, { backup: existing, created: false })
  throw new HttpError(409, 'exists', `A backup with dispatch_id ${dispatchId} already exists.`, existing)
}

async function finalize(db: Table, target: Target, workflowRunId: string, result: Result): Promise<Response> {
  const { id } = await db.find(target)
  const now = new Date().toISOString()
  if ('invalid' in result) {
    const [failed] = await db.updateIfInProgress(id, {
      status: 'failed',
      error_text: result.invalid,
      finished_at: now,
      workflow_run_id: workflowRunId
    })
    throw new HttpError(
      400,
      'invalid_result',
      result.invalid + (failed ? ' The backup was marked failed.' : ''),
      failed ?? (await db.get(id))
    )
  }
  const patch =
    result.status === 'success'
      ? {
          status: 'success',
          s3_key: result.s3Key,
          size_bytes: result.sizeBytes,
          error_text: null,
          finished_at: now,
          workflow_run_id: workflowRunId
        }
      : { status: 'failed', error_text: cleanErrorText(result.errorText, db.secrets), finished_at: now, workflow_run_id: workflowRunId }
  const [written] = await db.updateIfInProgress(id, patch)
  if (written) return json(200, { backup: written, updated: true })

  // Nothing changed: the row was already finished. The same result again is a retry (200);
  // anything else conflicts with what is recorded (409).
  const current = await db.get(id)
  const same =
    result.status === 'success'
      ? current.status === 'success' && current.s3_key === result.s3Key && Number(current.size_bytes) === result.sizeBytes
      : current.status === 'failed'
  if (same) return json(200, { backup: current, updated: false })
  const recorded = current.status === 'success' ? `success with s3_key ${current.s3_key}` : current.status
  throw new HttpError(409, 'already_finished', `Backup ${id} is already ${recorded}; a finished row is never changed.`, current)
}

/** backup_history through PostgREST with the service role key. */
class Table {
  constructor(private readonly config: Config) {}

  get secrets(): string[] {
    return [this.config.apiKey, this.config.serviceRoleKey]
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

  /** `UPDATE ... WHERE id = $1 AND status = 'in_progress' [AND condition] RETURNING *`: the only write there is. */
  updateIfInProgress(id: string, patch: Record<string, unknown>, condition = ''): Promise<BackupRow[]> {
    return this.request<BackupRow[]>('PATCH', `select=*&id=eq.${id}&status=eq.in_progress${condition ? `&${condition}` : ''}`, patch)
  }

  private async request<T>(method: string, query: string, body?: unknown): Promise<T> {
    const { supabaseUrl, serviceRoleKey, table } = this.config
    let response: Response
    try {
      response = await fetch(`${supabaseUrl}/rest/v1/${table}?${query}`, {
        method,
        headers: {
          apikey: serviceRoleKey,
          authorization: `Bearer ${serviceRoleKey}`,
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
    if (response.status === 401 || response.status === 403) {
      throw new HttpError(
        500,
        'misconfigured',
        `The database API refused the function's SUPABASE_SERVICE_ROLE_KEY (HTTP ${response.status}).`
      )
    }
    if (failure.code === 'PGRST205' || failure.code === '42P01') {
      throw new HttpError(500, 'misconfigured', `Table '${table}' does not exist: apply supabase/migrations, or set BACKUP_TABLE.`)
    }
    throw new UpstreamError(response.status, failure.code, failure.message)
  }
}

/** A PostgREST error the caller may handle (a unique violation on insert); else answered as a 500. */
class UpstreamError extends HttpError {
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

/** error_text is shown in the app: one line, no secrets, at most the table's 1000 characters. */
function cleanErrorText(text: string, secrets: string[]): string {
  let clean = text
  for (const secret of secrets) clean = clean.split(secret).join('***')
  clean = clean
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '***')
    .replace(/\s+/g, ' ')
    .trim()
  return clean.length > MAX_ERROR_TEXT ? `${clean.slice(0, MAX_ERROR_TEXT - 3)}...` : clean
}

function badRequest(message: string): HttpError {
  return new HttpError(400, 'bad_request', message)
}

function clip(text: string): string {
  const line = text.replace(/\s+/g, ' ')
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}

function errorResponse(error: HttpError): Response {
  const headers: Record<string, string> = {}
  if (error.status === 405) headers.allow = 'POST'
  if (error.status === 401) headers['www-authenticate'] = 'Bearer'
  return json(error.status, { error: error.message, code: error.code, ...(error.backup ? { backup: error.backup } : {}) }, headers)
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' } })
}
