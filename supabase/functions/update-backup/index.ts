// update-backup: the least-privilege way for CI to report a backup. The workflow holds only
// BACKUP_API_KEY; this function holds the project's admin key and applies backup_history's state
// machine itself (in_progress -> success | failed, one conditional UPDATE per write, a finished
// row never changes again), so a leaked CI secret can do no more than report backups.
//
// Deploy with JWT verification off (supabase/config.toml sets verify_jwt = false): callers send
// `Authorization: Bearer <BACKUP_API_KEY>`, which is not a Supabase JWT.
// Secrets: BACKUP_API_KEY (set it yourself, 32+ characters); BACKUP_TABLE (optional, default
// backup_history). Supabase provides SUPABASE_URL and the admin key: SUPABASE_SECRET_KEYS (the
// "default" secret key, or the one BACKUP_SECRET_KEY_NAME names), else the legacy
// SUPABASE_SERVICE_ROLE_KEY (see _shared/auth.ts).
//
// One endpoint, POST with a JSON body; `action` picks the call (default `finalize`, so seed 000's
// body `{backup_id, s3_key, size_bytes, workflow_run_id}` marks the row success):
//   {action: 'lookup',   backup_id | dispatch_id}                         200 {backup}
//   {action: 'create',   dispatch_id?, workflow_run_id}                   201 {backup, created: true}
//   {action: 'claim',    backup_id | dispatch_id, workflow_run_id,
//      claimed_by?, holder?, upload_key?}                                200 {backup, updated} (only an unclaimed row, or ours)
//   {action: 'finalize', backup_id | dispatch_id, workflow_run_id, holder?,
//      status: 'success' (default), s3_key, size_bytes, sha256? | status: 'failed', error_text}
//                                                                        200 {backup, updated}
//   {action: 'list_in_progress', limit?}                                 200 {backups} (oldest first; for the sweep)
//   {action: 'list_success', prefix, limit?, offset?, finished_not_after?} 200 {backups} (newest first; for the prune)
//   {action: 'expire', backup_id}                                        200 {backup, updated} (success rows only, once)
// `holder` is {workflow_run_id, claimed_by} as the caller read them (migration 010): the write
// only applies while the row is still held so, and a claim never takes a row another run holds.
// `expire` is the one change a finished row takes (migration 011): a success row's expired_at is set,
// once, stamped by the database; the prune sends it before it deletes the row's object.
// finished_at is stamped by the database (migration 010); before it, by this function's clock.
// Errors are {error, code[, backup]}: 400 bad request, 401 bad key (invalid_api_key), 404 no such row (row_not_found), 405 not POST,
// 409 the row is finished with another result (or several rows share the dispatch_id),
// 413 body too large, 500 misconfigured, 503 database unavailable (retry).
import { BackupTable, readTableConfig, UpstreamError, type SuccessPage, type TableConfig, type Target } from '../_shared/backup-table.ts'
import { bearerToken, cleanErrorText, clip, constantTimeEqual, errorResponse, HttpError, json } from '../_shared/http.ts'

interface Config extends TableConfig {
  apiKey: string
}

/** What a finalize request reports; `invalid` says why a reported success cannot be recorded. */
type Result =
  | { status: 'success'; s3Key: string; sizeBytes: number; sha256: string | undefined }
  | { status: 'failed'; errorText: string }
  | { invalid: string }

/** Who the caller read as holding the row: the write applies only while it still is. */
interface Holder {
  workflowRunId: string | null
  claimedBy: string | null
}

type Call =
  | { action: 'lookup'; target: Target }
  | { action: 'create'; dispatchId: string; workflowRunId: string }
  | {
      action: 'claim'
      target: Target
      workflowRunId: string
      claim: { claimedBy: string; holder: Holder; uploadKey: string | undefined } | undefined
    }
  | { action: 'finalize'; target: Target; workflowRunId: string; result: Result; holder: Holder | undefined }
  | { action: 'list_in_progress'; limit: number }
  | { action: 'list_success'; page: SuccessPage }
  | { action: 'expire'; backupId: string }

const ACTIONS = ['lookup', 'create', 'claim', 'finalize', 'list_in_progress', 'list_success', 'expire'] as const
const FIELDS: Record<Call['action'], string[]> = {
  lookup: ['backup_id', 'dispatch_id'],
  create: ['dispatch_id', 'workflow_run_id'],
  claim: ['backup_id', 'dispatch_id', 'workflow_run_id', 'claimed_by', 'holder', 'upload_key'],
  finalize: ['backup_id', 'dispatch_id', 'workflow_run_id', 'holder', 'status', 's3_key', 'size_bytes', 'sha256', 'error_text'],
  list_in_progress: ['limit'],
  list_success: ['prefix', 'limit', 'offset', 'finished_not_after'],
  expire: ['backup_id']
}
const MAX_LIST = 1000
/** The archive's SHA-256 as the table's check (migration 009) takes it. */
const SHA256_HEX = /^[0-9a-f]{64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const RUN_ID = /^[\x21-\x7e]{1,100}$/
const MIN_API_KEY_LENGTH = 32
const MAX_BODY_BYTES = 64 * 1024

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
  const apiKey = env('BACKUP_API_KEY')
  // Refuse to run half-configured: without a strong BACKUP_API_KEY nobody may write.
  if (apiKey.length < MIN_API_KEY_LENGTH) {
    throw new HttpError(
      500,
      'misconfigured',
      `The function's BACKUP_API_KEY secret is ${apiKey ? 'too short' : 'not set'}: set one of ${MIN_API_KEY_LENGTH}+ characters (supabase secrets set BACKUP_API_KEY=$(openssl rand -hex 32)).`
    )
  }
  return { ...readTableConfig(env), apiKey }
}

async function authenticate(request: Request, config: Config): Promise<void> {
  const key = bearerToken(request)
  if (!key) throw new HttpError(401, 'invalid_api_key', 'Send the API key as "Authorization: Bearer <BACKUP_API_KEY>".')
  if (!(await constantTimeEqual(key, config.apiKey))) {
    throw new HttpError(401, 'invalid_api_key', 'Invalid API key: it must equal the BACKUP_API_KEY secret of this function.')
  }
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
    case 'claim': {
      const workflowRunId = parseRunId(body.workflow_run_id)
      if (body.claimed_by === undefined && body.holder === undefined)
        return { action: 'claim', target: parseTarget(body), workflowRunId, claim: undefined }
      const claimedBy = parseClaimedBy(body.claimed_by, 'claimed_by')
      const holder = parseHolder(body.holder)
      if (!claimedBy || !holder) throw badRequest("A claim with 'claimed_by' also sends 'holder', and the reverse.")
      // The same rule as the action's: never take a row another run holds.
      if (holder.workflowRunId !== null && holder.workflowRunId !== workflowRunId)
        throw badRequest("'holder.workflow_run_id' must be null or the claiming run: a row another run holds is never taken.")
      return {
        action: 'claim',
        target: parseTarget(body),
        workflowRunId,
        claim: { claimedBy, holder, uploadKey: parseUploadKey(body.upload_key) }
      }
    }
    case 'finalize':
      return {
        action: 'finalize',
        target: parseTarget(body),
        workflowRunId: parseRunId(body.workflow_run_id),
        result: parseResult(body),
        holder: body.holder === undefined ? undefined : parseHolder(body.holder)
      }
    case 'list_in_progress': {
      const limit = body.limit === undefined ? 500 : body.limit
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST)
        throw badRequest(`'limit' must be a whole number from 1 to ${MAX_LIST}.`)
      return { action: 'list_in_progress', limit }
    }
    case 'list_success':
      return { action: 'list_success', page: parseSuccessPage(body) }
    case 'expire':
      return { action: 'expire', backupId: parseUuid(body.backup_id, 'backup_id') }
  }
}

/** A page of one prefix's success rows: the prefix is required, so one schedule's prune never lists another's. */
function parseSuccessPage(body: Record<string, unknown>): SuccessPage {
  const { prefix, limit = 500, offset = 0, finished_not_after: notAfter } = body
  if (typeof prefix !== 'string' || prefix === '' || new TextEncoder().encode(prefix).byteLength > 1024)
    throw badRequest("'prefix' is required: the key prefix whose success rows to list, at most 1024 bytes.")
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST)
    throw badRequest(`'limit' must be a whole number from 1 to ${MAX_LIST}.`)
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    throw badRequest("'offset' must be a whole number, 0 or more.")
  if (notAfter !== undefined && (typeof notAfter !== 'string' || Number.isNaN(Date.parse(notAfter))))
    throw badRequest("'finished_not_after' must be an ISO 8601 timestamp.")
  return { prefix, limit, offset, finishedNotAfter: notAfter as string | undefined }
}

function parseClaimedBy(value: unknown, field: string): string | null {
  if (value === null) return null
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(value))
    throw badRequest(`'${field}' must be up to 200 printable characters, or null.`)
  return value
}

/** The key the claiming job starts uploading to: a finalizer aborts it should that job's runner be lost. */
function parseUploadKey(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !value || new TextEncoder().encode(value).byteLength > 1024)
    throw badRequest("'upload_key' must be the object key being uploaded to, at most 1024 bytes.")
  return value
}

function parseHolder(value: unknown): Holder {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest("'holder' must be {workflow_run_id, claimed_by}: the row's holder as the caller read it.")
  }
  const { workflow_run_id, claimed_by } = value as Record<string, unknown>
  return {
    workflowRunId: workflow_run_id === null ? null : parseRunId(workflow_run_id),
    claimedBy: parseClaimedBy(claimed_by ?? null, 'holder.claimed_by')
  }
}

/** PostgREST filters for "held exactly so". */
function heldBy(holder: Holder): string {
  const is = (column: string, value: string | null) => `${column}=${value === null ? 'is.null' : `eq.${encodeURIComponent(value)}`}`
  return `${is('workflow_run_id', holder.workflowRunId)}&${is('claimed_by', holder.claimedBy)}`
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
    if (body.s3_key !== undefined || body.size_bytes !== undefined || body.sha256 !== undefined)
      throw badRequest("A 'failed' report carries 'error_text', not 's3_key', 'size_bytes' or 'sha256'.")
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
  // Optional (seed 000's body has none); when given, it must be what the table's check accepts.
  if (body.sha256 !== undefined && (typeof body.sha256 !== 'string' || !SHA256_HEX.test(body.sha256))) {
    return { invalid: "The backup workflow reported a 'sha256' that is not the archive's SHA-256 as 64 lowercase hex digits." }
  }
  return { status: 'success', s3Key, sizeBytes, sha256: body.sha256 as string | undefined }
}

async function perform(call: Call, config: Config): Promise<Response> {
  const db = new BackupTable(config)
  switch (call.action) {
    case 'lookup':
      return json(200, { backup: await db.find(call.target) })
    case 'create':
      return create(db, call.dispatchId, call.workflowRunId)
    case 'claim': {
      const { id } = await db.find(call.target)
      // Only a row held as the caller read it (migration 010), else only a row no run holds yet:
      // of two runs (or two jobs of a run) dispatched with one id, exactly one claims it.
      const [claimed] = call.claim
        ? await db.updateIfInProgress(
            id,
            {
              workflow_run_id: call.workflowRunId,
              claimed_by: call.claim.claimedBy,
              ...(call.claim.uploadKey === undefined ? {} : { upload_key: call.claim.uploadKey })
            },
            heldBy(call.claim.holder)
          )
        : await db.holdForRun(id, call.workflowRunId)
      if (claimed) return json(200, { backup: claimed, updated: true })
      const current = await db.get(id)
      // Held already: by this run (a retried claim, a re-run attempt), or by another, which keeps it.
      // With claimed_by the caller decides from the row it gets back.
      const ours = call.claim ? current.claimed_by === call.claim.claimedBy : current.workflow_run_id === call.workflowRunId
      if (current.status === 'in_progress')
        return json(200, { backup: current, updated: ours && current.workflow_run_id === call.workflowRunId })
      throw new HttpError(409, 'already_finished', `Backup ${id} is already ${current.status}; a finished row is never claimed again.`, {
        backup: current
      })
    }
    case 'finalize':
      return finalize(db, call, [config.apiKey, config.admin.key])
    case 'list_in_progress':
      return json(200, { backups: await db.listInProgress(call.limit) })
    case 'list_success':
      return json(200, { backups: await db.listSuccess(call.page) })
    case 'expire': {
      const [expired] = await db.expireIfSuccess(call.backupId)
      // Not changed: already expired (a retry, another prune), or not a success row; the caller reads why from the row.
      return json(200, { backup: expired ?? (await db.get(call.backupId)), updated: expired !== undefined })
    }
  }
}

async function create(db: BackupTable, dispatchId: string, workflowRunId: string): Promise<Response> {
  const inserted = await db.insert({ dispatch_id: dispatchId, workflow_run_id: workflowRunId, status: 'in_progress' })
  if (inserted) return json(201, { backup: inserted, created: true })
  // The dispatch_id is taken: a retry of this same create is answered with its row.
  const existing = await db.find({ dispatchId })
  if (existing.status === 'in_progress' && existing.workflow_run_id === workflowRunId)
    return json(200, { backup: existing, created: false })
  throw new HttpError(409, 'exists', `A backup with dispatch_id ${dispatchId} already exists.`, { backup: existing })
}

async function finalize(
  db: BackupTable,
  { target, workflowRunId, result, holder }: Extract<Call, { action: 'finalize' }>,
  secrets: string[]
): Promise<Response> {
  const { id } = await db.find(target)
  const condition = holder ? heldBy(holder) : ''
  const now = new Date().toISOString()
  if ('invalid' in result) {
    const [failed] = await db.updateIfInProgress(
      id,
      { status: 'failed', error_text: result.invalid, finished_at: now, workflow_run_id: workflowRunId },
      condition
    )
    throw new HttpError(400, 'invalid_result', result.invalid + (failed ? ' The backup was marked failed.' : ''), {
      backup: failed ?? (await db.get(id))
    })
  }
  const patch =
    result.status === 'success'
      ? {
          status: 'success',
          s3_key: result.s3Key,
          size_bytes: result.sizeBytes,
          ...(result.sha256 === undefined ? {} : { sha256: result.sha256 }),
          error_text: null,
          finished_at: now,
          workflow_run_id: workflowRunId
        }
      : { status: 'failed', error_text: cleanErrorText(result.errorText, secrets), finished_at: now, workflow_run_id: workflowRunId }
  const [written] = await db.updateIfInProgress(id, patch, condition).catch(error => {
    // A table that predates migration 009 has no sha256 column: the success is recorded without it.
    if (!(error instanceof UpstreamError) || !('sha256' in patch) || !/sha256/.test(error.message)) throw error
    console.warn('update-backup: the table has no sha256 column; apply supabase/migrations/009_add_sha256_to_backup_history.sql')
    const { sha256: _unrecorded, ...withoutSha256 } = patch
    return db.updateIfInProgress(id, withoutSha256, condition)
  })
  if (written) return json(200, { backup: written, updated: true })
  // Still in_progress: held by someone other than the caller expected; it keeps the row.
  const current = await db.get(id)
  if (current.status === 'in_progress') return json(200, { backup: current, updated: false })

  // Nothing changed: the row was already finished. The same result again is a retry (200);
  // anything else conflicts with what is recorded (409).
  const same =
    result.status === 'success'
      ? current.status === 'success' &&
        current.s3_key === result.s3Key &&
        Number(current.size_bytes) === result.sizeBytes &&
        (result.sha256 === undefined || (current.sha256 ?? result.sha256) === result.sha256)
      : current.status === 'failed'
  if (same) return json(200, { backup: current, updated: false })
  const recorded = current.status === 'success' ? `success with s3_key ${current.s3_key}` : current.status
  throw new HttpError(409, 'already_finished', `Backup ${id} is already ${recorded}; a finished row is never changed.`, { backup: current })
}

function badRequest(message: string): HttpError {
  return new HttpError(400, 'bad_request', message)
}
