// trigger-backup: starts a backup from the app. A signed-in user (or a holder of BACKUP_API_KEY)
// calls it; it inserts the backup_history row as in_progress with a fresh dispatch_id, then asks
// GitHub to run the backup workflow with that dispatch_id. GitHub names the run it started
// (`return_run_details`), and its id goes on the row at once, so the sweep judges the row by that
// run from the first minute, even when the job fails before the action's step or never gets a
// runner. When GitHub refuses or does not answer, the row is marked failed with GitHub's answer
// at once, so the app never waits on a backup that was never started.
//
// Deploy with JWT verification off (supabase/config.toml sets verify_jwt = false): the function
// checks the user's token itself, and also accepts BACKUP_API_KEY, which is not a JWT.
// Secrets: GITHUB_TOKEN, GITHUB_REPOSITORY (owner/repo), BACKUP_WORKFLOW (e.g. backup.yml),
// BACKUP_REF (default main); optional BACKUP_API_KEY (scripts), JWT_SECRET (only for a project
// that still signs user tokens with its legacy secret), GITHUB_API_URL, GITHUB_TIMEOUT_MS
// (default 10000), BACKUP_TABLE. Supabase provides SUPABASE_URL, SUPABASE_JWKS and the admin key
// (SUPABASE_SECRET_KEYS, else the legacy SUPABASE_SERVICE_ROLE_KEY): see _shared/auth.ts.
//
// POST, no body (or {}):  201 {backup_id, dispatch_id, workflow_run_id, html_url} (the run's id and page,
// null where GitHub does not name the run: a GitHub Enterprise Server without return_run_details)
// Errors are {error, code}: 400 a body with fields, 401 not a signed-in user nor the API key,
// 405 not POST, 413 body too large, 500 misconfigured (names the secret; nothing written),
// 502 dispatch_failed {error, code, backup_id, dispatch_id} (the row is failed with GitHub's answer),
// 503 database unavailable (nothing dispatched).
import { BackupTable, readTableConfig } from '../_shared/backup-table.ts'
import { cleanErrorText, HttpError, json, readJsonObject, serveApp } from '../_shared/http.ts'
import { authenticate, describeCaller, readAuthConfig } from '../_shared/callers.ts'
import { env, readGithubConfig } from './config.ts'
import { dispatchWorkflow } from './github.ts'

/** The row's writes after the dispatch are retried briefly, so a blip of the database does not lose them. */
const ROW_WRITE_ATTEMPTS = 3
const ROW_WRITE_PAUSE_MS = 500

serveApp('trigger-backup', handle)

async function handle(request: Request): Promise<Response> {
  if (request.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `Use POST, not ${request.method}.`)
  const auth = readAuthConfig(env)
  const caller = await authenticate(request, auth, 'start a backup')
  const github = readGithubConfig()
  const tableConfig = readTableConfig(env)
  await readEmptyBody(request)

  const db = new BackupTable(tableConfig)
  const dispatchId = crypto.randomUUID()
  const row = await db.insert({ dispatch_id: dispatchId, status: 'in_progress' })
  if (!row) throw new HttpError(500, 'upstream_error', `A fresh dispatch_id ${dispatchId} is already taken; retry.`)

  const outcome = await dispatchWorkflow(github, dispatchId)
  const ids = { backup_id: row.id, dispatch_id: dispatchId }
  if (outcome.ok) {
    const { run } = outcome
    // The backup is started either way: without the run id on the row, the action writes it when it claims the row.
    if (run) await writeWithRetries(`record run ${run.id} on backup ${row.id}`, () => db.holdForRun(row.id, run.id))
    console.log(
      `trigger-backup: ${describeCaller(caller)} started backup ${row.id} (dispatch_id ${dispatchId}, ${run ? `run ${run.id}` : 'run id not given by GitHub'})`
    )
    return json(201, { ...ids, workflow_run_id: run?.id ?? null, html_url: run?.htmlUrl ?? null })
  }
  const errorText = cleanErrorText(outcome.error, [github.token, auth.apiKey, auth.tokens.legacySecret, tableConfig.admin.key])
  const marked = await writeWithRetries(`mark backup ${row.id} failed`, () =>
    db.updateIfInProgress(row.id, { status: 'failed', error_text: errorText, finished_at: new Date().toISOString() })
  )
  console.error(`trigger-backup: backup ${row.id} failed: ${errorText}`)
  const message = marked ? errorText : `${errorText} The backup could not be marked failed (database unavailable); the sweep will.`
  throw new HttpError(502, 'dispatch_failed', message, ids)
}

/** The function takes no input: a body with fields is refused rather than ignored, so no caller believes it chose something. */
async function readEmptyBody(request: Request): Promise<void> {
  const body = await readJsonObject(request, 'The request body must be empty or a JSON object.')
  if (Object.keys(body).length > 0) {
    throw new HttpError(
      400,
      'bad_request',
      "trigger-backup takes no input: send no body or {}. The repository, workflow and ref come from the function's secrets."
    )
  }
}

/** One of the state machine's conditional UPDATEs, retried briefly; false, and logged, when it never went through. */
async function writeWithRetries(what: string, write: () => Promise<unknown>): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await write()
      return true
    } catch (error) {
      if (attempt >= ROW_WRITE_ATTEMPTS) {
        console.error(`trigger-backup: could not ${what}:`, error instanceof Error ? error.message : String(error))
        return false
      }
      await new Promise(resolve => setTimeout(resolve, ROW_WRITE_PAUSE_MS))
    }
  }
}
