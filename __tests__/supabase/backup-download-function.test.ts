// The backup-download edge function (supabase/functions/backup-download), run by Deno as Supabase
// runs it, behind the gateway stand-in, against the real Postgres and the local S3 store, which
// checks presigned URLs' signatures and expiry as S3 does: who may have a link to which backup
// (the table's RLS decides, per tenant here), rows that have nothing to download, that the link
// downloads the exact object under its file name and stops working when it expires, and that no
// secret reaches an answer or the logs.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../../scripts/test-services/config.js'
import { denoBinary, startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import { storeSecrets, withFunction } from '../harness/edge-functions.js'
import { services } from '../harness/services.js'
import { functionEnvFor, userToken } from '../harness/tokens.js'

const svc = await services()
const bucket = await svc.newBucket('download')
/**
 * The app's table in a multi-tenant project: each row belongs to the user who asked for it, and a
 * signed-in user may select only their own. (The shipped migration lets every signed-in user read
 * every row; an app with tenants replaces that policy with one like this.)
 */
const TABLE = 'backup_history_tenants'
await svc.sql(`create table if not exists public.${TABLE} (like public.backup_history including all)`)
await svc.sql(`alter table public.${TABLE} add column if not exists created_by uuid`)
// A column a pruning migration may add: the archive was deleted from the store.
await svc.sql(`alter table public.${TABLE} add column if not exists expired_at timestamptz`)
await svc.sql(`alter table public.${TABLE} enable row level security`)
await svc.sql(`drop policy if exists "users read their own backups" on public.${TABLE}`)
await svc.sql(`create policy "users read their own backups" on public.${TABLE} for select to authenticated using (created_by = auth.uid())`)

const ENV: FunctionEnv = {
  ...(functionEnvFor(svc.env, 'both') as FunctionEnv),
  BACKUP_API_KEY: svc.env.BACKUP_API_KEY,
  BACKUP_TABLE: TABLE,
  ...storeSecrets(svc.env, bucket)
}
const logs = new PassThrough()
let logText = ''
logs.on('data', (chunk: Buffer) => (logText += chunk.toString('utf8')))
const fn = await startFunction('backup-download', ENV, logs)
// As `supabase functions deploy backup-download` with its secrets set; verify_jwt comes from config.toml.
await svc.rest.deployFunction('backup-download', { verifyJwt: fn.verifyJwt, port: fn.port })
const FUNCTION_URL = `${svc.env.SUPABASE_URL}/functions/v1/backup-download`
const secrets = [
  svc.env.S3_SECRET_ACCESS_KEY,
  svc.env.BACKUP_API_KEY,
  svc.env.SUPABASE_SERVICE_ROLE_KEY,
  svc.env.SUPABASE_SECRET_KEY,
  svc.env.JWT_SECRET
]

after(async () => {
  await fn.stop()
  await svc.end()
})

interface Answer {
  status: number
  headers: Headers
  body: {
    url?: string
    expires_at?: string
    file_name?: string
    size_bytes?: number
    sha256?: string | null
    error?: string
    code?: string
    status?: string
  }
}

/** One call, as the app (a user's token and the publishable key) or a server makes it; every answer is checked for leaked secrets. */
async function call(token: string | null, body: unknown, options: { url?: string; method?: string } = {}): Promise<Answer> {
  const { url = FUNCTION_URL, method = 'POST' } = options
  const headers: Record<string, string> = { apikey: svc.env.SUPABASE_PUBLISHABLE_KEY, 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const response = await fetch(url, { method, headers, body: method === 'GET' ? undefined : JSON.stringify(body) })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Answer['body']) : {} }
}

interface Backup {
  id: string
  bytes: Buffer
  key: string
}

/** A finished backup of `owner`: its archive in the store and its row, as the action leaves them. */
async function backupOf(owner: string, options: { key?: string; status?: string; expired?: boolean } = {}): Promise<Backup> {
  const { key = `backups/2026/03/14/backup-${randomUUID()}.zip`, status = 'success' } = options
  const bytes = randomBytes(64 * 1024 + 7)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  if (status === 'success') await svc.s3.putObject(bucket, key, bytes)
  const finished = status !== 'in_progress'
  const [row] = await svc.sql<{ id: string }>(
    `insert into public.${TABLE} (dispatch_id, status, s3_key, size_bytes, sha256, error_text, finished_at, created_by, expired_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
    [
      randomUUID(),
      status,
      status === 'success' ? key : null,
      status === 'success' ? bytes.length : null,
      status === 'success' ? sha256 : null,
      status === 'failed' ? 'The upload failed: the store answered 403 AccessDenied. Check the bucket policy.' : null,
      finished ? new Date() : null,
      owner,
      options.expired ? new Date() : null
    ]
  )
  assert.ok(row)
  return { id: row.id, bytes, key }
}

const sha256Of = (bytes: Buffer | Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('the function as code', () => {
  it('type-checks and lints with Deno, offline, as deployed; config.toml lets both kinds of caller through the gateway', async () => {
    const run = promisify(execFile)
    await run(denoBinary(), ['check', 'supabase/functions/backup-download/index.ts'], { cwd: REPO_ROOT })
    await run(denoBinary(), ['lint', 'supabase/functions/backup-download/', 'supabase/functions/_shared/'], { cwd: REPO_ROOT })
    assert.equal(fn.verifyJwt, false)
  })
})

describe('a signed-in user and their own backup', () => {
  it('gets a link that downloads the exact archive under its file name, with the row’s size and SHA-256', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner)
    const before = Date.now()
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 200, answer.body.error)
    assert.deepEqual(Object.keys(answer.body).sort(), ['expires_at', 'file_name', 'sha256', 'size_bytes', 'url'])
    assert.equal(answer.body.file_name, backup.key.split('/').pop())
    assert.equal(answer.body.size_bytes, backup.bytes.length)
    assert.equal(answer.body.sha256, sha256Of(backup.bytes))
    assert.equal(answer.headers.get('cache-control'), 'no-store')
    // The default lifetime: five minutes from the signing second.
    const lifetime = Date.parse(answer.body.expires_at ?? '') - before
    assert.ok(lifetime > 298_000 && lifetime <= 300_000, `expires in ${lifetime} ms`)

    const url = new URL(answer.body.url ?? '')
    assert.equal(url.searchParams.get('X-Amz-Expires'), '300')
    assert.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host')
    const download = await fetch(url)
    assert.equal(download.status, 200)
    const bytes = new Uint8Array(await download.arrayBuffer())
    assert.equal(sha256Of(bytes), sha256Of(backup.bytes))
    assert.equal(download.headers.get('content-disposition'), `attachment; filename="${answer.body.file_name}"`)
  })

  it('a file name that is not plain ASCII: an ASCII fallback and the UTF-8 name (RFC 6266)', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner, { key: `backups/sauvegarde été (${randomUUID().slice(0, 8)}).zip` })
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 200, answer.body.error)
    const download = await fetch(answer.body.url ?? '')
    assert.equal(download.status, 200)
    assert.equal(sha256Of(new Uint8Array(await download.arrayBuffer())), sha256Of(backup.bytes))
    const name = answer.body.file_name ?? ''
    assert.equal(
      download.headers.get('content-disposition'),
      `attachment; filename="${name.replace(/é/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name).replace(/[()]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`
    )
  })

  it('a link lives DOWNLOAD_URL_TTL_SECONDS: it works until expires_at, then the store answers 403 Request has expired', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner)
    const answer = await withFunction('backup-download', { ...ENV, DOWNLOAD_URL_TTL_SECONDS: '2' }, url =>
      call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id }, { url })
    )
    assert.equal(answer.status, 200, answer.body.error)
    const expiresAt = Date.parse(answer.body.expires_at ?? '')
    assert.ok(expiresAt - Date.now() <= 2000, 'at most two seconds')
    const fresh = await fetch(answer.body.url ?? '')
    assert.equal(fresh.status, 200)
    await fresh.arrayBuffer()
    // Expiry is the behaviour under test: wait until the moment the answer named, and a little past it.
    await sleep(Math.max(0, expiresAt - Date.now()) + 100)
    const stale = await fetch(answer.body.url ?? '')
    assert.equal(stale.status, 403)
    assert.match(await stale.text(), /AccessDenied[\s\S]*Request has expired/)
  })
})

describe('backups the caller may not see: 404, the same answer as a backup that does not exist', () => {
  it("a user of another tenant (the table's RLS) gets what a missing id gets", async () => {
    const backup = await backupOf(randomUUID())
    const stranger = userToken(svc.env, 'ES256', { sub: randomUUID() })
    const hidden = await call(stranger, { backup_id: backup.id })
    const missingId = randomUUID()
    const missing = await call(stranger, { backup_id: missingId })
    assert.equal(hidden.status, 404)
    assert.equal(hidden.body.code, 'not_found')
    assert.deepEqual(hidden.body, { ...missing.body, error: missing.body.error?.replace(missingId, backup.id) })
    assert.equal(hidden.body.url, undefined)
  })

  it('a row the user may not see that is not finished is a 404 too, never a 409 that tells it exists', async () => {
    const backup = await backupOf(randomUUID(), { status: 'in_progress' })
    const answer = await call(userToken(svc.env, 'ES256', { sub: randomUUID() }), { backup_id: backup.id })
    assert.equal(answer.status, 404)
  })
})

describe('a server with BACKUP_API_KEY', () => {
  it('gets a link to any backup: the admin key reads the row', async () => {
    const backup = await backupOf(randomUUID())
    const answer = await call(svc.env.BACKUP_API_KEY, { backup_id: backup.id })
    assert.equal(answer.status, 200, answer.body.error)
    const download = await fetch(answer.body.url ?? '')
    assert.equal(sha256Of(new Uint8Array(await download.arrayBuffer())), sha256Of(backup.bytes))
  })
})

describe('backups with nothing to download', () => {
  it('in progress: 409 not_ready with its status', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner, { status: 'in_progress' })
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 409)
    assert.deepEqual(
      { code: answer.body.code, status: answer.body.status },
      {
        code: 'not_ready',
        status: 'in_progress'
      }
    )
    assert.match(answer.body.error ?? '', /still in progress: ask again once its status is success/)
  })

  it('failed: 409 not_ready with its status and why it failed', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner, { status: 'failed' })
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 409)
    assert.equal(answer.body.status, 'failed')
    assert.match(answer.body.error ?? '', /failed, so there is nothing to download: The upload failed/)
  })

  it('expired (expired_at set by a pruning job): 410 gone', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner, { expired: true })
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 410)
    assert.equal(answer.body.code, 'gone')
    assert.match(answer.body.error ?? '', /expired on .*: its archive has been deleted from the store/)
  })
})

describe('callers it refuses with 401', () => {
  const now = Math.floor(Date.now() / 1000)
  const cases: [string, () => string | null, RegExp][] = [
    ['no Authorization header', () => null, /Send a signed-in user's access token or the BACKUP_API_KEY/],
    ['a wrong API key', () => randomBytes(32).toString('hex'), /neither this function's BACKUP_API_KEY nor a JWT/],
    ['the API key without its last character', () => svc.env.BACKUP_API_KEY.slice(0, -1), /neither this function's BACKUP_API_KEY/],
    ['the publishable key as the bearer', () => svc.env.SUPABASE_PUBLISHABLE_KEY, /neither this function's BACKUP_API_KEY nor a JWT/],
    [
      'a token of the anon role (not signed in)',
      () => userToken(svc.env, 'ES256', { role: 'anon' }),
      /Only signed-in users may download a backup; this token's role is 'anon'/
    ],
    ['an expired user token', () => userToken(svc.env, 'ES256', { iat: now - 7200, exp: now - 3600 }), /has expired: refresh the session/]
  ]
  for (const [title, token, message] of cases) {
    it(title, async () => {
      const backup = await backupOf(randomUUID())
      const answer = await call(token(), { backup_id: backup.id })
      assert.equal(answer.status, 401, answer.body.error)
      assert.match(answer.body.error ?? '', message)
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer')
      assert.equal(answer.body.url, undefined)
    })
  }
})

describe('requests it refuses otherwise', () => {
  it('not POST: 405; a body without a backup_id, with a malformed one or with other fields: 400', async () => {
    const key = svc.env.BACKUP_API_KEY
    const get = await call(key, undefined, { method: 'GET' })
    assert.equal(get.status, 405)
    assert.equal(get.headers.get('allow'), 'POST')
    const cases: [unknown, RegExp][] = [
      [{}, /backup_id is missing/],
      [{ backup_id: 'latest' }, /backup_id must be a UUID/],
      [{ backup_id: randomUUID(), bucket: 'other' }, /Unknown field bucket/],
      [[randomUUID()], /Send a JSON body \{"backup_id"/]
    ]
    for (const [body, message] of cases) {
      const answer = await call(key, body)
      assert.equal(answer.status, 400, JSON.stringify(body))
      assert.match(answer.body.error ?? '', message)
    }
  })

  it('missing or malformed secrets: 500 naming the secret to set', async () => {
    const backup = await backupOf(randomUUID())
    const cases: [FunctionEnv, RegExp][] = [
      [{ BACKUP_S3_BUCKET: undefined }, /BACKUP_S3_BUCKET secret is not set/],
      [
        { BACKUP_S3_SECRET_ACCESS_KEY: undefined },
        /BACKUP_S3_SECRET_ACCESS_KEY secret is not set: set the key pair of an IAM user that may only s3:GetObject/
      ],
      [{ DOWNLOAD_URL_TTL_SECONDS: '7200' }, /DOWNLOAD_URL_TTL_SECONDS must be a whole number of seconds from 1 to 3600/],
      [{ BACKUP_S3_ENDPOINT: 'localhost:9000' }, /BACKUP_S3_ENDPOINT must be the http\(s\) URL/],
      [{ BACKUP_TABLE: 'backups_typo' }, /Table 'backups_typo' does not exist/]
    ]
    const answers = await Promise.all(
      cases.map(([env]) =>
        withFunction('backup-download', { ...ENV, ...env }, url => call(svc.env.BACKUP_API_KEY, { backup_id: backup.id }, { url }))
      )
    )
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 500, answer.body.error)
      assert.equal(answer.body.code, 'misconfigured')
      assert.match(answer.body.error ?? '', cases[i]?.[1] ?? /./)
    })
  })

  it("a wrong store key in the function's secrets: the link is signed, and the store refuses it (403 SignatureDoesNotMatch)", async () => {
    const backup = await backupOf(randomUUID())
    const answer = await withFunction('backup-download', { ...ENV, BACKUP_S3_SECRET_ACCESS_KEY: randomBytes(20).toString('hex') }, url =>
      call(svc.env.BACKUP_API_KEY, { backup_id: backup.id }, { url })
    )
    assert.equal(answer.status, 200)
    const refused = await fetch(answer.body.url ?? '')
    assert.equal(refused.status, 403)
    assert.match(await refused.text(), /SignatureDoesNotMatch/)
  })

  it('answers a browser: the preflight and every answer carry CORS headers', async () => {
    const preflight = await fetch(FUNCTION_URL, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' }
    })
    assert.equal(preflight.status, 204)
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /\bapikey\b/)
    const backup = await backupOf(randomUUID())
    for (const answer of [await call(svc.env.BACKUP_API_KEY, { backup_id: backup.id }), await call(null, {})]) {
      assert.equal(answer.headers.get('access-control-allow-origin'), '*', String(answer.status))
    }
  })
})

describe('the logs', () => {
  it('name who got a link to which backup, and hold no secret and no link', async () => {
    const owner = randomUUID()
    const backup = await backupOf(owner)
    const answer = await call(userToken(svc.env, 'ES256', { sub: owner }), { backup_id: backup.id })
    assert.equal(answer.status, 200)
    await sleep(50)
    assert.match(logText, new RegExp(`user ${owner} got a link to backup ${backup.id}, valid until`))
    for (const secret of secrets) assert.ok(!logText.includes(secret), 'a secret reached the logs')
    assert.ok(!logText.includes('X-Amz-Signature'), 'a link reached the logs')
  })
})
