// backup-download: a short-lived link to a finished backup, for the app's download button. The
// bucket is private and the store's keys are this function's secrets: it answers a presigned GET
// URL (SigV4, DOWNLOAD_URL_TTL_SECONDS, default 5 minutes) that downloads that one object, under
// its file name, and nothing else.
//
// Who sees which backup is the table's own RLS: a signed-in user's call reads the row through the
// database API with the user's token, so a row their policies do not let them select is a 404,
// the same answer as a row that does not exist. BACKUP_API_KEY callers (servers) read it with the
// admin key. Deploy with JWT verification off (supabase/config.toml sets verify_jwt = false).
// Secrets: BACKUP_S3_BUCKET, BACKUP_S3_ACCESS_KEY_ID, BACKUP_S3_SECRET_ACCESS_KEY (a key that may
// only s3:GetObject the backups); optional BACKUP_S3_REGION (default us-east-1),
// BACKUP_S3_ENDPOINT, BACKUP_S3_FORCE_PATH_STYLE, BACKUP_S3_SESSION_TOKEN,
// DOWNLOAD_URL_TTL_SECONDS (1 to 3600), BACKUP_API_KEY, JWT_SECRET, BACKUP_TABLE. Supabase provides
// SUPABASE_URL, SUPABASE_JWKS, the public key (SUPABASE_PUBLISHABLE_KEYS, else SUPABASE_ANON_KEY)
// and the admin key: see _shared/auth.ts.
//
// POST {backup_id}:  200 {url, expires_at, file_name, size_bytes, sha256}
// Errors are {error, code}: 400 bad body, 401 not a signed-in user nor the API key, 404 not_found
// (no such row, or not one the caller may see), 405 not POST, 409 not_ready {status} (in_progress
// or failed), 410 gone (the archive was pruned: expired_at), 500 misconfigured, 503 database unavailable.
import { readPublicKey } from '../_shared/auth.ts'
import { BackupTable, readTableConfig, type BackupRow } from '../_shared/backup-table.ts'
import { authenticate, describeCaller, readAuthConfig, type Caller } from '../_shared/callers.ts'
import { HttpError, json, readJsonObject, serveApp } from '../_shared/http.ts'
import { presignGetObject } from '../_shared/presign.ts'
import { env, readStoreConfig } from './config.ts'
import { contentDisposition, fileNameOf } from './download-name.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const USAGE = 'Send a JSON body {"backup_id": "<the backup_history row\'s id>"}.'

serveApp('backup-download', handle)

async function handle(request: Request): Promise<Response> {
  if (request.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `Use POST, not ${request.method}.`)
  const caller = await authenticate(request, readAuthConfig(env), 'download a backup')
  const store = readStoreConfig()
  const backupId = await readBackupId(request)
  const row = await readRow(caller, backupId)

  const fileName = fileNameOf(row.s3_key ?? '')
  const { url, expiresAt } = await presignGetObject(store.location, store.credentials, row.s3_key ?? '', {
    expiresInSeconds: store.ttlSeconds,
    query: { 'response-content-disposition': contentDisposition(fileName) }
  })
  // Never the URL: until it expires it is a key to the object.
  console.log(`backup-download: ${describeCaller(caller)} got a link to backup ${row.id}, valid until ${expiresAt.toISOString()}`)
  return json(
    200,
    { url, expires_at: expiresAt.toISOString(), file_name: fileName, size_bytes: row.size_bytes, sha256: row.sha256 ?? null },
    // The answer is a credential for a few minutes: no cache keeps it.
    { 'cache-control': 'no-store' }
  )
}

async function readBackupId(request: Request): Promise<string> {
  const body = await readJsonObject(request, USAGE)
  const unknown = Object.keys(body).filter(name => name !== 'backup_id')
  if (unknown.length > 0) throw new HttpError(400, 'bad_request', `Unknown field ${unknown.join(', ')}. ${USAGE}`)
  const backupId = body.backup_id
  if (typeof backupId !== 'string' || !UUID.test(backupId)) {
    throw new HttpError(400, 'bad_request', `backup_id ${backupId === undefined ? 'is missing' : 'must be a UUID'}. ${USAGE}`)
  }
  return backupId.toLowerCase()
}

/** The row as the caller may see it, finished with an archive still in the store; else the answer that says why not. */
async function readRow(caller: Caller, backupId: string): Promise<BackupRow> {
  const config = readTableConfig(env)
  const table =
    caller.kind === 'user'
      ? new BackupTable(config, { kind: 'user', token: caller.token, publicKey: readPublicKey(env) })
      : new BackupTable(config)
  const row = await table.visible(backupId)
  // One answer for "no such row" and "not yours": a caller learns nothing about rows they may not see.
  if (!row) throw new HttpError(404, 'not_found', `No backup has id ${backupId}, or you may not see it.`)
  if (row.status === 'in_progress') {
    throw new HttpError(409, 'not_ready', `Backup ${backupId} is still in progress: ask again once its status is success.`, {
      status: row.status
    })
  }
  if (row.status !== 'success' || !row.s3_key) {
    const reason = row.error_text ? `: ${row.error_text}` : '.'
    throw new HttpError(409, 'not_ready', `Backup ${backupId} failed, so there is nothing to download${reason}`, { status: row.status })
  }
  if (row.expired_at) {
    throw new HttpError(410, 'gone', `Backup ${backupId} expired on ${row.expired_at}: its archive has been deleted from the store.`)
  }
  return row
}
