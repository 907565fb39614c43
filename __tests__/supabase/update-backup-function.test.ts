// The update-backup edge function (supabase/functions/update-backup, seed 000's contract), run by
// Deno as Supabase runs it, behind the gateway stand-in, against the real Postgres: its requests,
// the state machine it enforces, its errors, and that it never echoes a secret.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, afterEach, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../../scripts/test-services/config.js'
import { denoBinary, startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import type { BackupRow } from '../../src/ledger/ledger.js'
import { insertRow, readRow } from '../harness/backup-job.js'
import { services } from '../harness/services.js'

const svc = await services()
after(() => svc.end())
afterEach(async () => {
  if (!(await svc.postgres.running())) await svc.postgres.start()
})

const FUNCTION = 'supabase/functions/update-backup/index.ts'
const secrets = [svc.env.BACKUP_API_KEY, svc.env.SUPABASE_SERVICE_ROLE_KEY, svc.env.JWT_SECRET]

interface Answer {
  status: number
  headers: Headers
  body: { backup?: BackupRow; updated?: boolean; created?: boolean; error?: string; code?: string }
}

/** One call, as a workflow makes it; every answer is checked for leaked secrets. */
async function call(body: unknown, options: { key?: string | null; method?: string; url?: string; raw?: string } = {}): Promise<Answer> {
  const { key = svc.env.BACKUP_API_KEY, method = 'POST', url = `${svc.env.SUPABASE_URL}/functions/v1/update-backup` } = options
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
    body: method === 'GET' ? undefined : (options.raw ?? JSON.stringify(body))
  })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as Answer['body'] }
}

const success = (row: { dispatchId: string }, extra: Record<string, unknown> = {}) => ({
  dispatch_id: row.dispatchId,
  s3_key: 'backups/2026/01/15/backup-x.zip',
  size_bytes: 1024000,
  workflow_run_id: '123456789',
  ...extra
})

describe('the function as code', () => {
  it('type-checks and lints with Deno, offline, as deployed', async () => {
    const run = promisify(execFile)
    await run(denoBinary(), ['check', FUNCTION], { cwd: REPO_ROOT })
    await run(denoBinary(), ['lint', FUNCTION, 'supabase/functions/_shared/'], { cwd: REPO_ROOT })
  })
})

describe('seed 000: the workflow reports a finished backup', () => {
  it("marks the row success with s3_key, size_bytes, workflow_run_id and finished_at from the seed's body", async () => {
    const row = await insertRow(svc)
    const answer = await call({ backup_id: row.id, s3_key: 'backups/x.zip', size_bytes: 1024000, workflow_run_id: '123456789' })
    assert.equal(answer.status, 200, answer.body.error)
    assert.equal(answer.body.updated, true)
    const stored = await readRow(svc, row.id)
    assert.deepEqual(answer.body.backup, {
      ...stored,
      created_at: answer.body.backup?.created_at,
      finished_at: answer.body.backup?.finished_at
    })
    assert.equal(stored.status, 'success')
    assert.equal(stored.s3_key, 'backups/x.zip')
    assert.equal(stored.size_bytes, 1024000)
    assert.equal(stored.workflow_run_id, '123456789')
    assert.equal(stored.error_text, null)
    assert.ok(stored.finished_at)
  })

  it('finds the row by dispatch_id as well, and takes a numeric run id and size as the shell sends them', async () => {
    const row = await insertRow(svc)
    const answer = await call(success(row, { workflow_run_id: 987, size_bytes: '42' }))
    assert.equal(answer.status, 200, answer.body.error)
    assert.equal(answer.body.backup?.workflow_run_id, '987')
    assert.equal((await readRow(svc, row.id)).size_bytes, 42)
  })

  it('is idempotent: the same result again is 200 with the row unchanged', async () => {
    const row = await insertRow(svc)
    assert.equal((await call(success(row))).status, 200)
    const first = await readRow(svc, row.id)
    const again = await call(success(row))
    assert.equal(again.status, 200)
    assert.equal(again.body.updated, false)
    assert.deepEqual(await readRow(svc, row.id), first)
  })

  it('refuses a conflicting result with 409 and the recorded row; a finished row never changes', async () => {
    const row = await insertRow(svc)
    await call(success(row))
    const finished = await readRow(svc, row.id)
    for (const conflicting of [
      success(row, { s3_key: 'backups/other.zip' }),
      success(row, { size_bytes: 1 }),
      { ...failed(row), error_text: 'late' }
    ]) {
      const answer = await call(conflicting)
      assert.equal(answer.status, 409)
      assert.equal(answer.body.code, 'already_finished')
      assert.match(answer.body.error ?? '', /already success with s3_key backups\/2026\/01\/15\/backup-x.zip/)
      assert.equal(answer.body.backup?.status, 'success')
    }
    assert.deepEqual(await readRow(svc, row.id), finished)
  })

  it('applies one conditional update: of ten racing reports exactly one is written', async () => {
    const row = await insertRow(svc)
    const reports = Array.from({ length: 10 }, (_, i) =>
      i % 2 ? failed(row, `attempt ${i}`) : success(row, { s3_key: `backups/${i}.zip` })
    )
    const answers = await Promise.all(reports.map(report => call(report)))
    const written = answers.filter(answer => answer.body.updated === true)
    assert.equal(written.length, 1)
    const stored = await readRow(svc, row.id)
    assert.deepEqual(written[0]?.body.backup?.status, stored.status)
    for (const answer of answers) {
      if (answer === written[0]) continue
      // Another success or failure than the one recorded conflicts; a second failure repeats it.
      assert.ok([200, 409].includes(answer.status), `${answer.status} ${answer.body.error}`)
      assert.equal(answer.body.updated ?? false, false)
    }
  })
})

function failed(row: { dispatchId: string }, errorText = 'The run was cancelled while uploading.') {
  return { dispatch_id: row.dispatchId, workflow_run_id: '123456789', status: 'failed', error_text: errorText }
}

describe('a failed backup', () => {
  it('marks the row failed with error_text on one line, secrets scrubbed, at most 1000 characters', async () => {
    const row = await insertRow(svc)
    const text = `Upload failed:\n  key ${svc.env.BACKUP_API_KEY} token ${svc.env.SUPABASE_SERVICE_ROLE_KEY} ${'x'.repeat(1200)}`
    const answer = await call(failed(row, text))
    assert.equal(answer.status, 200, answer.body.error)
    const stored = await readRow(svc, row.id)
    assert.equal(stored.status, 'failed')
    assert.ok(stored.finished_at)
    assert.equal(stored.s3_key, null)
    assert.match(stored.error_text ?? '', /^Upload failed: key \*\*\* token \*\*\* x+\.\.\.$/)
    assert.equal(stored.error_text?.length, 1000)
  })

  it('a repeated failure is 200; a success after it is 409', async () => {
    const row = await insertRow(svc)
    await call(failed(row))
    const again = await call(failed(row, 'reported twice'))
    assert.equal(again.status, 200)
    assert.equal(again.body.updated, false)
    assert.equal(again.body.backup?.error_text, 'The run was cancelled while uploading.')
    assert.equal((await call(success(row))).status, 409)
  })

  for (const [title, report, reason] of [
    ['an empty s3_key', { s3_key: '  ' }, /without an 's3_key'/],
    ['no s3_key', { s3_key: undefined }, /without an 's3_key'/],
    ['a negative size_bytes', { size_bytes: -1 }, /valid 'size_bytes'/],
    ['a fractional size_bytes', { size_bytes: 1.5 }, /valid 'size_bytes'/]
  ] as const) {
    it(`a success report with ${title} marks the row failed saying why (seed 000), and answers 400`, async () => {
      const row = await insertRow(svc)
      const answer = await call(success(row, report))
      assert.equal(answer.status, 400)
      assert.equal(answer.body.code, 'invalid_result')
      assert.match(answer.body.error ?? '', reason)
      const stored = await readRow(svc, row.id)
      assert.equal(stored.status, 'failed')
      assert.match(stored.error_text ?? '', reason)
      assert.deepEqual(answer.body.backup?.status, 'failed')
    })
  }

  it("a success with the archive's sha256 stores it; a malformed one fails the row with that said", async () => {
    const hashed = await insertRow(svc)
    const hash = 'ab'.repeat(32)
    const answer = await call(success(hashed, { sha256: hash }))
    assert.equal(answer.status, 200, answer.body.error)
    assert.equal((await readRow(svc, hashed.id)).sha256, hash)
    assert.equal((await call(success(hashed, { sha256: hash }))).body.updated, false, 'the same report again is a retry')
    assert.equal((await call(success(hashed, { sha256: 'cd'.repeat(32) }))).status, 409)

    const malformed = await insertRow(svc)
    const refused = await call(success(malformed, { sha256: hash.toUpperCase() }))
    assert.equal(refused.status, 400)
    assert.equal(refused.body.code, 'invalid_result')
    const failedRow = await readRow(svc, malformed.id)
    assert.equal(failedRow.status, 'failed')
    assert.match(failedRow.error_text ?? '', /'sha256' that is not the archive's SHA-256 as 64 lowercase hex digits/)
  })

  it('a failure report without error_text fails the row with that said', async () => {
    const row = await insertRow(svc)
    const answer = await call({ ...failed(row), error_text: ' ' })
    assert.equal(answer.status, 400)
    assert.match((await readRow(svc, row.id)).error_text ?? '', /reported a failure without 'error_text'/)
  })
})

describe('the calls the action makes before it uploads', () => {
  it('lookup finds the row by dispatch_id or backup_id; an unknown one is 404 row_not_found', async () => {
    const row = await insertRow(svc)
    for (const target of [{ dispatch_id: row.dispatchId }, { backup_id: row.id }]) {
      const answer = await call({ action: 'lookup', ...target })
      assert.equal(answer.status, 200)
      assert.equal(answer.body.backup?.id, row.id)
    }
    const missing = await call({ action: 'lookup', dispatch_id: randomUUID() })
    assert.equal(missing.status, 404)
    assert.equal(missing.body.code, 'row_not_found')
  })

  it('claim records the run id and leaves the row in_progress; a finished row cannot be claimed (409)', async () => {
    const row = await insertRow(svc)
    const answer = await call({ action: 'claim', dispatch_id: row.dispatchId, workflow_run_id: '555' })
    assert.equal(answer.status, 200)
    assert.equal(answer.body.updated, true)
    const claimed = await readRow(svc, row.id)
    assert.equal(claimed.status, 'in_progress')
    assert.equal(claimed.workflow_run_id, '555')
    assert.equal(claimed.finished_at, null)

    const done = await insertRow(svc, { status: 'success' })
    const refused = await call({ action: 'claim', backup_id: done.id, workflow_run_id: '555' })
    assert.equal(refused.status, 409)
    assert.equal(refused.body.code, 'already_finished')
    assert.equal((await readRow(svc, done.id)).workflow_run_id, null)
  })

  it('claim takes only a row no run holds: the same run again is answered updated, another run is not', async () => {
    const row = await insertRow(svc)
    assert.equal((await call({ action: 'claim', backup_id: row.id, workflow_run_id: '556' })).body.updated, true)
    assert.equal((await call({ action: 'claim', backup_id: row.id, workflow_run_id: '556' })).body.updated, true)
    const other = await call({ action: 'claim', backup_id: row.id, workflow_run_id: '557' })
    assert.equal(other.status, 200)
    assert.equal(other.body.updated, false)
    assert.equal(other.body.backup?.workflow_run_id, '556')
    assert.equal((await readRow(svc, row.id)).workflow_run_id, '556')
  })

  it('create inserts an in_progress row; the same create again is answered with it; another run gets 409', async () => {
    const dispatchId = randomUUID()
    const created = await call({ action: 'create', dispatch_id: dispatchId, workflow_run_id: '777' })
    assert.equal(created.status, 201)
    assert.equal(created.body.created, true)
    assert.equal(created.body.backup?.status, 'in_progress')
    assert.equal(created.body.backup?.dispatch_id, dispatchId)

    const retried = await call({ action: 'create', dispatch_id: dispatchId, workflow_run_id: '777' })
    assert.equal(retried.status, 200)
    assert.equal(retried.body.created, false)
    assert.equal(retried.body.backup?.id, created.body.backup?.id)

    const other = await call({ action: 'create', dispatch_id: dispatchId, workflow_run_id: '778' })
    assert.equal(other.status, 409)
    assert.equal(other.body.code, 'exists')

    const generated = await call({ action: 'create', workflow_run_id: '779' })
    assert.equal(generated.status, 201)
    assert.match(generated.body.backup?.dispatch_id ?? '', /^[0-9a-f-]{36}$/)
  })
})

describe('requests it refuses, writing nothing', () => {
  it('anything but POST: 405 with Allow: POST', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const answer = await call({}, { method })
      assert.equal(answer.status, 405)
      assert.equal(answer.headers.get('allow'), 'POST')
    }
  })

  it('no key, a wrong key, or a prefix of the right one: 401, the row untouched', async () => {
    const row = await insertRow(svc)
    const before = await readRow(svc, row.id)
    for (const key of [
      null,
      'wrong',
      svc.env.BACKUP_API_KEY.slice(0, -1),
      `${svc.env.BACKUP_API_KEY}x`,
      svc.env.SUPABASE_SERVICE_ROLE_KEY
    ]) {
      const answer = await call(success(row), { key })
      assert.equal(answer.status, 401)
      assert.equal(answer.body.code, 'invalid_api_key')
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer')
    }
    assert.deepEqual(await readRow(svc, row.id), before)
  })

  it('bad requests: 400 naming the problem, the row untouched', async () => {
    const row = await insertRow(svc)
    const before = await readRow(svc, row.id)
    const cases: [unknown, RegExp, string?][] = [
      [undefined, /must be a JSON object/, 'not json'],
      [[success(row)], /must be a JSON object/],
      [{ ...success(row), s3Key: 'x' }, /Unknown field 's3Key'/],
      [{ ...success(row), backup_id: row.id }, /'backup_id' or 'dispatch_id', not both/],
      [{ s3_key: 'k', size_bytes: 1, workflow_run_id: '1' }, /'backup_id' or 'dispatch_id' is required/],
      [success(row, { dispatch_id: 'run-42' }), /'dispatch_id' must be a UUID/],
      [success(row, { workflow_run_id: undefined }), /'workflow_run_id' is required/],
      [success(row, { workflow_run_id: 'has space' }), /'workflow_run_id' is required/],
      [success(row, { status: 'done' }), /'status' must be 'success' or 'failed'/],
      [success(row, { error_text: 'x' }), /carries 's3_key' and 'size_bytes', not 'error_text'/],
      [{ ...failed(row), s3_key: 'k' }, /carries 'error_text', not 's3_key'/],
      [{ ...failed(row), sha256: 'ab'.repeat(32) }, /carries 'error_text', not 's3_key', 'size_bytes' or 'sha256'/],
      [{ action: 'delete', backup_id: row.id }, /'action' must be one of lookup, create, claim, finalize/]
    ]
    for (const [body, message, raw] of cases) {
      const answer = await call(body, raw === undefined ? {} : { raw })
      assert.equal(answer.status, 400, JSON.stringify(body))
      assert.equal(answer.body.code === 'bad_request' || answer.body.code === 'invalid_json', true)
      assert.match(answer.body.error ?? '', message)
    }
    assert.deepEqual(await readRow(svc, row.id), before)
  })

  it('a body over 64 KiB: 413', async () => {
    const answer = await call({ action: 'lookup', backup_id: randomUUID(), padding: 'x'.repeat(70 * 1024) })
    assert.equal(answer.status, 413)
  })
})

describe('when things around it fail', () => {
  it('database down: 503 database_unavailable (the action retries), then works once it is back', async () => {
    const row = await insertRow(svc)
    await svc.postgres.stop()
    const down = await call(success(row))
    assert.equal(down.status, 503)
    assert.equal(down.body.code, 'database_unavailable')
    await svc.postgres.start()
    assert.equal((await call(success(row))).status, 200)
    assert.equal((await readRow(svc, row.id)).status, 'success')
  })

  it('misconfigured: a short or missing BACKUP_API_KEY is refused for every caller, a missing table is named', async () => {
    const lookup = { action: 'lookup', backup_id: randomUUID() }
    for (const apiKey of ['', 'short-key']) {
      const answer = await withFunction({ BACKUP_API_KEY: apiKey }, url => call(lookup, { key: apiKey, url }))
      assert.equal(answer.status, 500)
      assert.equal(answer.body.code, 'misconfigured')
      assert.match(answer.body.error ?? '', /BACKUP_API_KEY secret is (not set|too short)/)
    }
    const key = randomBytes(32).toString('hex')
    const answer = await withFunction({ BACKUP_API_KEY: key, BACKUP_TABLE: 'backups_typo' }, url => call(lookup, { key, url }))
    assert.equal(answer.status, 500)
    assert.match(answer.body.error ?? '', /Table 'backups_typo' does not exist: apply supabase\/migrations, or set BACKUP_TABLE/)
  })

  it('a table without the unique dispatch_id: several rows are 409 ambiguous, none is touched', async () => {
    const table = 'backup_history_no_unique'
    await svc.sql(`create table if not exists public.${table} (like public.backup_history including defaults)`)
    const dispatchId = randomUUID()
    const first = await insertRow(svc, { dispatch_id: dispatchId }, table)
    await insertRow(svc, { dispatch_id: dispatchId }, table)
    const key = randomBytes(32).toString('hex')
    const answer = await withFunction({ BACKUP_API_KEY: key, BACKUP_TABLE: table }, url => call(success({ dispatchId }), { key, url }))
    assert.equal(answer.status, 409)
    assert.equal(answer.body.code, 'ambiguous')
    assert.equal((await readRow(svc, first.id, table)).status, 'in_progress')
  })
})

/** A second instance of the function with its own environment, for what the shared one cannot show. */
async function withFunction<T>(env: FunctionEnv, use: (url: string) => Promise<T>): Promise<T> {
  const log = new PassThrough().resume()
  const fn = await startFunction(
    'update-backup',
    { SUPABASE_URL: svc.env.SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY: svc.env.SUPABASE_SERVICE_ROLE_KEY, ...env },
    log
  )
  try {
    return await use(`http://127.0.0.1:${fn.port}/update-backup`)
  } finally {
    await fn.stop()
  }
}

describe('expire and list_success (the prune, migration 011)', () => {
  it('expire marks a success row once and nothing else; a failed row is left as it is', async () => {
    const success = await insertRow(svc, { status: 'success', s3_key: `prune-fn-${randomUUID()}/a.zip` })
    const first = await call({ action: 'expire', backup_id: success.id })
    assert.equal(first.status, 200)
    assert.equal(first.body.updated, true)
    assert.ok(first.body.backup?.expired_at)
    const again = await call({ action: 'expire', backup_id: success.id })
    assert.equal(again.body.updated, false)
    assert.equal(again.body.backup?.expired_at, first.body.backup?.expired_at)
    const failed = await insertRow(svc, { status: 'failed' })
    const refused = await call({ action: 'expire', backup_id: failed.id })
    assert.equal(refused.status, 200)
    assert.equal(refused.body.updated, false)
    assert.equal((await readRow(svc, failed.id)).expired_at, null)
    const unknown = await call({ action: 'expire', backup_id: randomUUID() })
    assert.equal(unknown.body.code, 'row_not_found')
  })

  it("list_success lists one prefix's success rows, newest first, a page at a time; the prefix is required", async () => {
    const prefix = `prune-list-${randomBytes(4).toString('hex')}_x/`
    const ids: string[] = []
    for (const key of ['a.zip', 'b.zip', 'c.zip']) ids.push((await insertRow(svc, { status: 'success', s3_key: `${prefix}${key}` })).id)
    // '_' is not a wildcard: a key one character off is not listed.
    await insertRow(svc, { status: 'success', s3_key: `${prefix.replace('_x', 'yx')}d.zip` })
    const list = async (body: Record<string, unknown>) =>
      (await call({ action: 'list_success', prefix, ...body })).body as { backups?: BackupRow[] }
    const all = await list({})
    assert.equal(all.backups?.length, 3)
    const pages = [...((await list({ limit: 2 })).backups ?? []), ...((await list({ limit: 2, offset: 2 })).backups ?? [])]
    assert.deepEqual(
      pages.map(row => row.id),
      all.backups?.map(row => row.id)
    )
    const missing = await call({ action: 'list_success' })
    assert.equal(missing.status, 400)
    assert.match(missing.body.error ?? '', /'prefix' is required/)
  })
})
