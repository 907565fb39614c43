// The functions in each state a project's API keys go through (legacy keys only, both kinds,
// legacy keys disabled), with the variables Supabase gives them in that state: the admin key they
// pick (the secret key first, sent only as `apikey`), and what they say when there is none.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { REPO_ROOT } from '../../scripts/test-services/config.js'
import type { FunctionEnv } from '../../scripts/test-services/functions.js'
import type { BackupRow } from '../../src/ledger/ledger.js'
import { insertRow, readRow, rowCount } from '../harness/backup-job.js'
import { withFunction } from '../harness/edge-functions.js'
import { startGithubApi } from '../harness/github-api.js'
import { services, type KeyState } from '../harness/services.js'
import { functionEnvFor, userToken } from '../harness/tokens.js'

const svc = await services()
const github = await startGithubApi('octo-org/octo-repo', `ghp_${randomBytes(18).toString('hex')}`)
after(async () => {
  await svc.rest.projectKeys('both')
  await github.close()
  await svc.end()
})
const STATES: readonly KeyState[] = ['legacy-only', 'both', 'legacy-disabled']
const secrets = [svc.env.SUPABASE_SECRET_KEY, svc.env.SUPABASE_SERVICE_ROLE_KEY, svc.env.BACKUP_API_KEY, svc.env.JWT_SECRET, github.token]

interface Answer {
  status: number
  body: { backup?: BackupRow; backup_id?: string; error?: string; code?: string }
}

/** A POST to a function; no answer may carry a secret. */
async function post(url: string, token: string, body: unknown = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  return { status: response.status, body: JSON.parse(text) as Answer['body'] }
}

/** The key the functions must use in each state, as the gateway counted it. */
async function assertAdminKey(state: KeyState): Promise<void> {
  const { keys } = await svc.rest.stats()
  if (state === 'legacy-only') {
    assert.ok(keys.legacy > 0, 'the legacy service role key is used')
    assert.equal(keys.secret, 0)
  } else {
    assert.ok(keys.secret > 0, 'the secret key is used')
    assert.equal(keys.legacy, 0, 'the legacy key is not used while a secret key exists')
  }
  assert.equal(keys.opaqueAsBearer, 0, 'an opaque key goes only in the apikey header')
}

function triggerEnv(state: KeyState): FunctionEnv {
  return {
    ...(functionEnvFor(svc.env, state) as FunctionEnv),
    // A project that still signs user tokens with its legacy secret sets it for the function.
    ...(state === 'legacy-only' ? { JWT_SECRET: svc.env.JWT_SECRET } : {}),
    GITHUB_TOKEN: github.token,
    GITHUB_REPOSITORY: github.repository,
    BACKUP_WORKFLOW: 'backup.yml',
    GITHUB_API_URL: github.url
  }
}

for (const state of STATES) {
  describe(`functions, project keys ${state}`, () => {
    it('update-backup looks up, claims and finalizes rows with the admin key of that state', async () => {
      await svc.rest.projectKeys(state)
      const row = await insertRow(svc)
      await svc.rest.resetStats()
      const url = `${svc.env.SUPABASE_URL}/functions/v1/update-backup`
      const lookup = await post(url, svc.env.BACKUP_API_KEY, { action: 'lookup', dispatch_id: row.dispatchId })
      assert.equal(lookup.status, 200, lookup.body.error)
      const claim = await post(url, svc.env.BACKUP_API_KEY, { action: 'claim', backup_id: row.id, workflow_run_id: '42' })
      assert.equal(claim.status, 200, claim.body.error)
      const finalize = await post(url, svc.env.BACKUP_API_KEY, {
        backup_id: row.id,
        workflow_run_id: '42',
        s3_key: 'backups/k.zip',
        size_bytes: 10
      })
      assert.equal(finalize.status, 200, finalize.body.error)
      assert.equal((await readRow(svc, row.id)).status, 'success')
      await assertAdminKey(state)
    })

    it(`trigger-backup starts a backup for a signed-in user (${state === 'legacy-only' ? 'HS256, legacy secret' : 'ES256'})`, async () => {
      await svc.rest.projectKeys(state)
      const before = await rowCount(svc)
      await svc.rest.resetStats()
      const answer = await withFunction('trigger-backup', triggerEnv(state), url =>
        post(url, userToken(svc.env, state === 'legacy-only' ? 'legacy' : 'ES256'))
      )
      assert.equal(answer.status, 201, answer.body.error)
      assert.equal(await rowCount(svc), before + 1)
      await assertAdminKey(state)
    })
  })
}

describe('the admin key', () => {
  const base = (): FunctionEnv => ({ SUPABASE_URL: svc.env.SUPABASE_URL, BACKUP_API_KEY: svc.env.BACKUP_API_KEY })
  const lookup = (url: string): Promise<Answer> => post(url, svc.env.BACKUP_API_KEY, { action: 'lookup', backup_id: row.id })
  let row: { id: string }

  it('BACKUP_SECRET_KEY_NAME picks another secret key of SUPABASE_SECRET_KEYS', async () => {
    await svc.rest.projectKeys('both')
    row = await insertRow(svc)
    await svc.rest.resetStats()
    const env = { ...base(), SUPABASE_SECRET_KEYS: JSON.stringify({ default: 'sb_secret_revoked', ci: svc.env.SUPABASE_SECRET_KEY }) }
    const answer = await withFunction('update-backup', { ...env, BACKUP_SECRET_KEY_NAME: 'ci' }, lookup)
    assert.equal(answer.status, 200, answer.body.error)
    await assertAdminKey('both')
  })

  const refusals: [string, () => FunctionEnv, RegExp][] = [
    [
      'no key at all: a 500 that names every variable tried',
      base,
      /No key for the database API: tried SUPABASE_SECRET_KEYS\["default"\] \(no keys\) and SUPABASE_SERVICE_ROLE_KEY \(not set\)\. Create a secret key/
    ],
    [
      'BACKUP_SECRET_KEY_NAME naming a key that is not there',
      () => ({ ...base(), SUPABASE_SECRET_KEYS: JSON.stringify({ default: svc.env.SUPABASE_SECRET_KEY }), BACKUP_SECRET_KEY_NAME: 'ci' }),
      /BACKUP_SECRET_KEY_NAME names the secret key "ci", but SUPABASE_SECRET_KEYS has only "default"/
    ],
    [
      'SUPABASE_SECRET_KEYS that is not JSON',
      () => ({ ...base(), SUPABASE_SECRET_KEYS: 'sb_secret_x' }),
      /SUPABASE_SECRET_KEYS is not JSON/
    ],
    [
      'only the legacy key, in a project that disabled it: says to create a secret key',
      () => ({ ...base(), SUPABASE_SERVICE_ROLE_KEY: svc.env.SUPABASE_SERVICE_ROLE_KEY }),
      /refused the function's SUPABASE_SERVICE_ROLE_KEY: this project's legacy API keys are disabled\. Create a secret key/
    ]
  ]
  for (const [title, env, message] of refusals) {
    it(`${title}; nothing written`, async () => {
      await svc.rest.projectKeys('legacy-disabled')
      row = await insertRow(svc)
      const answer = await withFunction('update-backup', env(), url =>
        post(url, svc.env.BACKUP_API_KEY, { backup_id: row.id, workflow_run_id: '7', status: 'failed', error_text: 'x' })
      )
      assert.equal(answer.status, 500)
      assert.equal(answer.body.code, 'misconfigured')
      assert.match(answer.body.error ?? '', message)
      assert.equal((await readRow(svc, row.id)).status, 'in_progress')
    })
  }

  it('each deployed function resolves jose to the version the tests run', async () => {
    const pinned = (JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
      .devDependencies.jose
    for (const name of ['update-backup', 'trigger-backup']) {
      const config = JSON.parse(await readFile(path.join(REPO_ROOT, 'supabase/functions', name, 'deno.json'), 'utf8')) as unknown
      assert.deepEqual(config, { imports: { jose: `npm:jose@${pinned}` } }, name)
    }
  })
})
