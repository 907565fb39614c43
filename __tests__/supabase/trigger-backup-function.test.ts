// The trigger-backup edge function (supabase/functions/trigger-backup), run by Deno as Supabase runs
// it, behind the gateway stand-in, against the real Postgres and a local stand-in for GitHub's REST
// API: who may start a backup, the row it writes, the workflow_dispatch call it makes, and that a
// refused or unanswered dispatch fails the row at once with GitHub's answer and never a secret.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, afterEach, beforeEach, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { createClient } from '@supabase/supabase-js'
import { corsHeaders } from '@supabase/supabase-js/cors'
import { startBackup, waitForBackup, type Backup } from '../../examples/trigger-backup.js'
import { REPO_ROOT } from '../../scripts/test-services/config.js'
import { denoBinary, startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import { signJwt } from '../../scripts/test-services/jwt.js'
import type { BackupRow } from '../../src/ledger/ledger.js'
import { readRow, rowCount } from '../harness/backup-job.js'
import { withFunction } from '../harness/edge-functions.js'
import { startGithubApi } from '../harness/github-api.js'
import { services } from '../harness/services.js'

const svc = await services()
const github = await startGithubApi('octo-org/octo-repo', `ghp_${randomBytes(18).toString('hex')}`)
const GITHUB_TOKEN = github.token
const TIMEOUT_MS = 1000
const ENV: FunctionEnv = {
  SUPABASE_URL: svc.env.SUPABASE_URL,
  SUPABASE_SERVICE_ROLE_KEY: svc.env.SUPABASE_SERVICE_ROLE_KEY,
  BACKUP_API_KEY: svc.env.BACKUP_API_KEY,
  JWT_SECRET: svc.env.JWT_SECRET,
  GITHUB_TOKEN,
  GITHUB_REPOSITORY: github.repository,
  BACKUP_WORKFLOW: 'backup.yml',
  GITHUB_API_URL: github.url,
  GITHUB_TIMEOUT_MS: String(TIMEOUT_MS)
}
const logs = new PassThrough().resume()
const fn = await startFunction('trigger-backup', ENV, logs)
// As `supabase functions deploy trigger-backup` with its secrets set; verify_jwt comes from config.toml.
await svc.rest.deployFunction('trigger-backup', { verifyJwt: fn.verifyJwt, port: fn.port })
const FUNCTION_URL = `${svc.env.SUPABASE_URL}/functions/v1/trigger-backup`
const DISPATCH_PATH = '/repos/octo-org/octo-repo/actions/workflows/backup.yml/dispatches'
const secrets = [GITHUB_TOKEN, svc.env.BACKUP_API_KEY, svc.env.SUPABASE_SERVICE_ROLE_KEY, svc.env.JWT_SECRET]

after(async () => {
  await fn.stop()
  await github.close()
  await svc.end()
})
beforeEach(() => {
  github.token = GITHUB_TOKEN
  github.workflows = new Map([['backup.yml', { inputs: ['dispatch_id'] }]])
  github.refs = new Set(['main'])
  github.dispatches.length = 0
  github.failWith = undefined
  github.failMessage = undefined
  github.hang = false
  github.runDetails = 'return'
})
afterEach(async () => {
  if (!(await svc.postgres.running())) await svc.postgres.start()
})

interface Answer {
  status: number
  headers: Headers
  body: {
    backup_id?: string
    dispatch_id?: string
    workflow_run_id?: string | null
    html_url?: string | null
    error?: string
    code?: string
  }
}

/** One call, as the app or a script makes it; every answer is checked for leaked secrets. */
async function call(options: { token?: string | null; method?: string; body?: string; url?: string } = {}): Promise<Answer> {
  const { token = svc.env.BACKUP_API_KEY, method = 'POST', url = FUNCTION_URL } = options
  const response = await fetch(url, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` }, body: options.body })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Answer['body']) : {} }
}

/** A signed-in user's access token, as Supabase Auth issues it. */
function userToken(claims: Record<string, unknown> = {}, secret = svc.env.JWT_SECRET): string {
  const now = Math.floor(Date.now() / 1000)
  return signJwt({ aud: 'authenticated', role: 'authenticated', sub: randomUUID(), iat: now, exp: now + 3600, ...claims }, secret)
}

/** The answer of a dispatch GitHub refused: 502 with the ids, and the row already failed with the same sentence. */
async function refusedDispatch(): Promise<{ answer: Answer; row: BackupRow }> {
  const answer = await call()
  assert.equal(answer.status, 502, answer.body.error)
  assert.equal(answer.body.code, 'dispatch_failed')
  const row = await readRow(svc, answer.body.backup_id ?? '')
  assert.equal(row.status, 'failed')
  assert.equal(row.dispatch_id, answer.body.dispatch_id)
  assert.equal(row.error_text, answer.body.error)
  assert.ok(row.finished_at, 'finished_at is set')
  assert.equal(row.s3_key, null)
  for (const secret of secrets) assert.ok(!row.error_text?.includes(secret), `a secret reached error_text: ${row.error_text}`)
  return { answer, row }
}

/** A second instance with its own secrets, called directly, for what the deployed one cannot show. */

describe('the function as code', () => {
  it('type-checks and lints with Deno, offline, as deployed; config.toml lets both kinds of caller through the gateway', async () => {
    const run = promisify(execFile)
    await run(denoBinary(), ['check', 'supabase/functions/trigger-backup/index.ts'], { cwd: REPO_ROOT })
    await run(denoBinary(), ['lint', 'supabase/functions/trigger-backup/', 'supabase/functions/_shared/'], { cwd: REPO_ROOT })
    assert.equal(fn.verifyJwt, false)
  })
})

describe('starting a backup', () => {
  it('inserts the in_progress row with a fresh dispatch_id, dispatches the workflow with it, and answers 201 with the ids and the run', async () => {
    const before = await rowCount(svc)
    const answer = await call()
    assert.equal(answer.status, 201, answer.body.error)
    assert.deepEqual(Object.keys(answer.body).sort(), ['backup_id', 'dispatch_id', 'html_url', 'workflow_run_id'])
    assert.match(answer.body.dispatch_id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.equal(await rowCount(svc), before + 1)

    const row = await readRow(svc, answer.body.backup_id ?? '')
    assert.equal(row.status, 'in_progress')
    assert.equal(row.dispatch_id, answer.body.dispatch_id)
    assert.equal(row.workflow_run_id, answer.body.workflow_run_id)
    assert.equal(row.error_text, null)
    assert.equal(row.finished_at, null)

    assert.deepEqual(github.dispatches, [
      {
        path: DISPATCH_PATH,
        authorization: `Bearer ${GITHUB_TOKEN}`,
        userAgent: 'supabase-s3-backup-trigger',
        apiVersion: '2022-11-28',
        body: { ref: 'main', inputs: { dispatch_id: answer.body.dispatch_id }, return_run_details: true }
      }
    ])
  })

  it('each call is its own backup: parallel calls get distinct rows and dispatch ids', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => call()))
    for (const answer of answers) assert.equal(answer.status, 201, answer.body.error)
    assert.equal(new Set(answers.map(answer => answer.body.backup_id)).size, 5)
    assert.equal(new Set(answers.map(answer => answer.body.dispatch_id)).size, 5)
    assert.equal(github.dispatches.length, 5)
  })

  it("accepts a signed-in user's access token and dispatches BACKUP_REF", async () => {
    const answer = await withFunction('trigger-backup', { ...ENV, BACKUP_API_KEY: undefined, BACKUP_REF: 'release' }, url => {
      github.refs.add('release')
      return call({ url, token: userToken() })
    })
    assert.equal(answer.status, 201, answer.body.error)
    assert.deepEqual(github.dispatches[0]?.body, {
      ref: 'release',
      inputs: { dispatch_id: answer.body.dispatch_id },
      return_run_details: true
    })
    assert.equal((await readRow(svc, answer.body.backup_id ?? '')).status, 'in_progress')
  })

  it('answers a browser: the preflight and every answer carry CORS headers covering what supabase-js sends', async () => {
    const preflight = await fetch(FUNCTION_URL, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' }
    })
    assert.equal(preflight.status, 204)
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*')
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/)
    assert.match(corsHeaders['Access-Control-Allow-Headers'] ?? '', /authorization/)
    const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').split(/,\s*/)
    for (const name of (corsHeaders['Access-Control-Allow-Headers'] ?? '').split(/,\s*/))
      assert.ok(allowed.includes(name), `${name} not allowed`)
    for (const answer of [await call(), await call({ token: null })]) {
      assert.equal(answer.headers.get('access-control-allow-origin'), '*', String(answer.status))
    }
  })
})

describe('the frontend snippet (examples/trigger-backup.ts) with supabase-js', () => {
  it('a signed-in user starts a backup and polls the row until the workflow finishes it', async () => {
    const token = userToken()
    const supabase = createClient(svc.env.SUPABASE_URL, svc.env.SUPABASE_ANON_KEY, { accessToken: async () => token })
    const started = await startBackup(supabase)
    assert.equal(github.dispatches.length, 1)

    const seen: Backup['status'][] = []
    let finishing: Promise<Response> | undefined
    const backup = await waitForBackup(supabase, started.backup_id, {
      intervalMs: 10,
      onProgress: row => {
        seen.push(row.status)
        // The dispatched run reports its result, as the workflow in examples/edge-function.yml does.
        finishing ??= fetch(`${svc.env.SUPABASE_URL}/functions/v1/update-backup`, {
          method: 'POST',
          headers: { authorization: `Bearer ${svc.env.BACKUP_API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ dispatch_id: started.dispatch_id, s3_key: 'backups/app.zip', size_bytes: 42, workflow_run_id: '9001' })
        })
      }
    })
    assert.equal((await finishing)?.status, 200)
    assert.equal(seen[0], 'in_progress')
    assert.equal(backup.status, 'success')
    assert.equal(backup.s3_key, 'backups/app.zip')
    assert.equal(backup.dispatch_id, started.dispatch_id)
  })

  it('startBackup throws what the function says: not signed in, or GitHub refusing the dispatch', async () => {
    const anonymous = createClient(svc.env.SUPABASE_URL, svc.env.SUPABASE_ANON_KEY)
    await assert.rejects(startBackup(anonymous), /Only signed-in users may start a backup; this token's role is 'anon'/)

    github.token = 'ghp_rotated'
    const token = userToken()
    const signedIn = createClient(svc.env.SUPABASE_URL, svc.env.SUPABASE_ANON_KEY, { accessToken: async () => token })
    await assert.rejects(startBackup(signedIn), /GitHub refused the workflow dispatch \(401 Unauthorized\): Bad credentials/)
  })
})

describe('callers it refuses with 401, writing nothing and dispatching nothing', () => {
  const now = Math.floor(Date.now() / 1000)
  const cases: [string, () => string | null, RegExp][] = [
    ['no Authorization header', () => null, /Send a signed-in user's access token or the BACKUP_API_KEY/],
    ['the anon key (not signed in)', () => svc.env.SUPABASE_ANON_KEY, /role is 'anon'/],
    ['the service role key (not a user)', () => svc.env.SUPABASE_SERVICE_ROLE_KEY, /role is 'service_role'/],
    ['a wrong API key', () => randomBytes(32).toString('hex'), /neither this function's BACKUP_API_KEY nor a JWT/],
    ['the API key without its last character', () => svc.env.BACKUP_API_KEY.slice(0, -1), /neither this function's BACKUP_API_KEY/],
    ['an expired user token', () => userToken({ iat: now - 7200, exp: now - 3600 }), /has expired: refresh the session/],
    ['a user token signed with another secret', () => userToken({}, randomBytes(32).toString('hex')), /signature does not match/],
    ['a user token without exp', () => userToken({ exp: undefined }), /has no expiry/],
    [
      'an unsigned token (alg none)',
      () => unsigned({ role: 'authenticated', exp: now + 3600 }),
      /not signed with an algorithm this project uses/
    ]
  ]
  for (const [title, token, message] of cases) {
    it(title, async () => {
      const before = await rowCount(svc)
      const answer = await call({ token: token() })
      assert.equal(answer.status, 401, answer.body.error)
      assert.match(answer.body.error ?? '', message)
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer')
      assert.equal(await rowCount(svc), before)
      assert.equal(github.dispatches.length, 0)
    })
  }

  it('a token signed with the legacy secret when the function has no JWT_SECRET (the project signs with its signing keys)', async () => {
    const answer = await withFunction('trigger-backup', { ...ENV, JWT_SECRET: undefined }, url => call({ url, token: userToken() }))
    assert.equal(answer.status, 401)
    assert.match(answer.body.error ?? '', /not signed by one of the project's signing keys.*must set the function's JWT_SECRET secret/)
    assert.equal(github.dispatches.length, 0)
  })
})

function unsigned(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`
}

describe('requests it refuses otherwise, writing nothing', () => {
  it('anything but POST: 405; a body with fields: 400 (the function takes no input); {} is fine', async () => {
    const before = await rowCount(svc)
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const answer = await call({ method, body: method === 'GET' ? undefined : '{}' })
      assert.equal(answer.status, 405, method)
      assert.equal(answer.headers.get('allow'), 'POST')
    }
    for (const body of ['{"ref":"dev"}', '[]', 'not json']) {
      const answer = await call({ body })
      assert.equal(answer.status, 400, body)
      assert.match(answer.body.error ?? '', /takes no input|must be empty or a JSON object/)
    }
    assert.equal(await rowCount(svc), before)
    assert.equal(github.dispatches.length, 0)
    assert.equal((await call({ body: '{}' })).status, 201)
  })

  it('missing configuration: 500 naming the secret to set, nothing written, nothing dispatched', async () => {
    const before = await rowCount(svc)
    const cases: [FunctionEnv, RegExp][] = [
      [{ GITHUB_TOKEN: undefined }, /GITHUB_TOKEN secret is not set/],
      [{ GITHUB_REPOSITORY: undefined }, /GITHUB_REPOSITORY secret is not set; set it to "owner\/repo"/],
      [{ GITHUB_REPOSITORY: 'just-a-name' }, /GITHUB_REPOSITORY secret is not "owner\/repo"/],
      [{ BACKUP_WORKFLOW: undefined }, /BACKUP_WORKFLOW secret is not set: set it to the workflow's file name/],
      [{ GITHUB_TIMEOUT_MS: 'soon' }, /GITHUB_TIMEOUT_MS must be a whole number/],
      [{ SUPABASE_JWKS: 'not json' }, /SUPABASE_JWKS is not JSON/],
      [
        { SUPABASE_SERVICE_ROLE_KEY: undefined },
        /No key for the database API: tried SUPABASE_SECRET_KEYS\["default"\] \(no keys\) and SUPABASE_SERVICE_ROLE_KEY/
      ],
      [{ BACKUP_API_KEY: 'short' }, /BACKUP_API_KEY secret is too short/]
    ]
    const answers = await Promise.all(
      cases.map(([env]) => withFunction('trigger-backup', { ...ENV, ...env }, url => call({ url, token: userToken() })))
    )
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 500, answer.body.error)
      assert.equal(answer.body.code, 'misconfigured')
      assert.match(answer.body.error ?? '', cases[i]?.[1] ?? /./)
    })
    assert.equal(await rowCount(svc), before)
    assert.equal(github.dispatches.length, 0)
  })

  it('database down: 503 and GitHub is not called; works again once it is back', async () => {
    await svc.postgres.stop()
    const down = await call()
    assert.equal(down.status, 503)
    assert.equal(down.body.code, 'database_unavailable')
    assert.equal(github.dispatches.length, 0)
    await svc.postgres.start()
    assert.equal((await call()).status, 201)
  })
})

describe('a dispatch GitHub refuses fails the row at once with its answer (502), never leaving it in_progress', () => {
  it('a wrong or revoked token: 401 Bad credentials', async () => {
    github.token = 'ghp_rotated'
    const { row } = await refusedDispatch()
    assert.equal(
      row.error_text,
      'GitHub refused the workflow dispatch (401 Unauthorized): Bad credentials. Check GITHUB_TOKEN: it is invalid, expired or revoked.'
    )
    assert.equal(github.dispatches[0]?.authorization, `Bearer ${GITHUB_TOKEN}`)
  })

  it('an unknown workflow: 404 Not Found, naming BACKUP_WORKFLOW and GITHUB_REPOSITORY', async () => {
    github.workflows.delete('backup.yml')
    const { row } = await refusedDispatch()
    assert.match(
      row.error_text ?? '',
      /^GitHub refused the workflow dispatch \(404 Not Found\): Not Found\. Check BACKUP_WORKFLOW \(backup\.yml\) and GITHUB_REPOSITORY \(octo-org\/octo-repo\)/
    )
  })

  it("a workflow without the dispatch_id input: 422 with GitHub's message", async () => {
    github.workflows.set('backup.yml', { inputs: [] })
    const { row } = await refusedDispatch()
    assert.match(
      row.error_text ?? '',
      /^GitHub refused the workflow dispatch \(422 Unprocessable Entity\): Unexpected inputs provided: \["dispatch_id"\]\. Check that backup\.yml has 'on: workflow_dispatch' with a 'dispatch_id' input/
    )
  })

  it('a ref that does not exist: 422 No ref found, naming BACKUP_REF', async () => {
    github.refs.clear()
    const { row } = await refusedDispatch()
    assert.match(row.error_text ?? '', /\(422 Unprocessable Entity\): No ref found for: main\. .*BACKUP_REF \(main\) exists/)
  })

  it('GitHub does not answer: failed within the configured bound (GITHUB_TIMEOUT_MS)', async () => {
    github.hang = true
    const started = performance.now()
    const { row } = await refusedDispatch()
    const elapsed = performance.now() - started
    assert.ok(elapsed >= TIMEOUT_MS && elapsed < TIMEOUT_MS + 2000, `answered after ${Math.round(elapsed)} ms`)
    assert.match(row.error_text ?? '', /^GitHub's API did not answer the workflow dispatch within 1 s \(GITHUB_TIMEOUT_MS\)/)
    assert.equal(github.dispatches.length, 1)
  })

  it('GitHub cannot be reached: failed naming GITHUB_API_URL', async () => {
    const answer = await withFunction('trigger-backup', { ...ENV, GITHUB_API_URL: 'http://127.0.0.1:1' }, url => call({ url }))
    assert.equal(answer.status, 502)
    const row = await readRow(svc, answer.body.backup_id ?? '')
    assert.equal(row.status, 'failed')
    assert.match(
      row.error_text ?? '',
      /^Could not reach GitHub's API at http:\/\/127\.0\.0\.1:1 for the workflow dispatch \(.+\); check GITHUB_API_URL\.$/
    )
  })

  it('a GitHub answer that echoes a secret: stored and answered with *** instead, on one line', async () => {
    github.failWith = 500
    github.failMessage = `upstream said\n token ${GITHUB_TOKEN} key ${svc.env.BACKUP_API_KEY}`
    const { row } = await refusedDispatch()
    assert.equal(
      row.error_text,
      'GitHub refused the workflow dispatch (500 Internal Server Error): upstream said token *** key ***. GitHub had a problem; retry later.'
    )
    const [leaks] = await svc.sql<{ n: number }>(
      `select count(*)::int as n from public.backup_history where error_text like '%' || $1 || '%'`,
      [GITHUB_TOKEN]
    )
    assert.equal(leaks?.n, 0)
  })
})
