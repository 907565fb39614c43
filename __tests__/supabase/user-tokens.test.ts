// Signed-in users' access tokens as the functions check them (supabase/functions/_shared/auth.ts):
// ES256 and RS256 tokens from the project's signing keys are accepted, from SUPABASE_JWKS or the
// project's JWKS endpoint; every forgery, expiry and key confusion is a 401 that writes nothing.
// The function here is trigger-backup, the one users call, in a project whose legacy keys are off.
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, beforeEach, describe, it } from 'node:test'
import { startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import { newSigningKey, signAsymmetric } from '../../scripts/test-services/jwt.js'
import { rowCount } from '../harness/backup-job.js'
import { withFunction } from '../harness/edge-functions.js'
import { startGithubApi } from '../harness/github-api.js'
import { services } from '../harness/services.js'
import { functionEnvFor, signingKey, userToken } from '../harness/tokens.js'

const svc = await services()
const github = await startGithubApi('octo-org/octo-repo', `ghp_${randomBytes(18).toString('hex')}`)
await svc.rest.projectKeys('legacy-disabled')
const ENV: FunctionEnv = {
  ...(functionEnvFor(svc.env, 'legacy-disabled') as FunctionEnv),
  GITHUB_TOKEN: github.token,
  GITHUB_REPOSITORY: github.repository,
  BACKUP_WORKFLOW: 'backup.yml',
  GITHUB_API_URL: github.url
}
const fn = await startFunction('trigger-backup', ENV, new PassThrough().resume())
await svc.rest.deployFunction('trigger-backup', { verifyJwt: fn.verifyJwt, port: fn.port })
const FUNCTION_URL = `${svc.env.SUPABASE_URL}/functions/v1/trigger-backup`
const secrets = [svc.env.SUPABASE_SECRET_KEY, svc.env.JWT_SECRET, github.token]

after(async () => {
  await fn.stop()
  await svc.rest.projectKeys('both')
  await github.close()
  await svc.end()
})
beforeEach(() => {
  github.dispatches.length = 0
})

/** The app's call: the user's token as the bearer, the publishable key as apikey (what supabase-js sends). */
async function call(token: string, url = FUNCTION_URL): Promise<{ status: number; error: string; code: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, apikey: svc.env.SUPABASE_PUBLISHABLE_KEY }
  })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  const body = JSON.parse(text) as { error?: string; code?: string }
  return { status: response.status, error: body.error ?? '', code: body.code ?? '' }
}

describe('tokens it accepts', () => {
  it('an ES256 token from the current signing key', async () => {
    const answer = await call(userToken(svc.env, 'ES256'))
    assert.equal(answer.status, 201, answer.error)
    assert.equal(github.dispatches.length, 1)
  })

  it('an RS256 token from the other key of a rotation, both in the JWKS', async () => {
    const answer = await call(userToken(svc.env, 'RS256'))
    assert.equal(answer.status, 201, answer.error)
  })

  it('without SUPABASE_JWKS: the keys come from the project JWKS endpoint', async () => {
    const answer = await withFunction('trigger-backup', { ...ENV, SUPABASE_JWKS: undefined }, url => call(userToken(svc.env, 'ES256'), url))
    assert.equal(answer.status, 201, answer.error)
  })

  it('a key added since the function started: an unknown kid makes it fetch the JWKS again', async () => {
    const onlyCurrent = JSON.stringify({ keys: [signingKey(svc.env, 'ES256').publicJwk] })
    const answer = await withFunction('trigger-backup', { ...ENV, SUPABASE_JWKS: onlyCurrent }, url =>
      call(userToken(svc.env, 'RS256'), url)
    )
    assert.equal(answer.status, 201, answer.error)
  })
})

describe('tokens it refuses with 401, writing nothing and dispatching nothing', () => {
  const now = Math.floor(Date.now() / 1000)
  const outsider = newSigningKey('ES256')
  const es256 = (): ReturnType<typeof signingKey> => signingKey(svc.env, 'ES256')
  const cases: [string, () => string, RegExp][] = [
    [
      'a token signed by a key outside the JWKS',
      () => signAsymmetric({ role: 'authenticated', aud: 'authenticated', sub: 'u', exp: now + 3600 }, outsider),
      /names a signing key \(kid\) that is not in the project's JWKS/
    ],
    [
      "a token signed by another key under the project key's kid",
      () => signAsymmetric({ role: 'authenticated', aud: 'authenticated', sub: 'u', exp: now + 3600 }, { ...outsider, kid: es256().kid }),
      /signature does not match/
    ],
    ['an expired token', () => userToken(svc.env, 'ES256', { iat: now - 7200, exp: now - 3600 }), /has expired/],
    ['a token without exp', () => userToken(svc.env, 'ES256', { exp: undefined }), /has no expiry/],
    ['a token not valid yet (nbf)', () => userToken(svc.env, 'ES256', { nbf: now + 3600 }), /not valid yet/],
    ['a token for another audience', () => userToken(svc.env, 'ES256', { aud: 'other' }), /audience \(aud\) is not 'authenticated'/],
    [
      'a token of the anon role',
      () => userToken(svc.env, 'ES256', { role: 'anon' }),
      /Only signed-in users may start a backup; this token's role is 'anon'/
    ],
    [
      'an unsigned token (alg none)',
      () => unsigned({ role: 'authenticated', aud: 'authenticated', sub: 'u', exp: now + 3600 }),
      /not signed by one of the project's signing keys/
    ],
    [
      'an HS256 token signed with the public key (key confusion)',
      () => hs256WithKey({ role: 'authenticated', aud: 'authenticated', sub: 'u', exp: now + 3600 }, JSON.stringify(es256().publicJwk)),
      /not signed by one of the project's signing keys/
    ],
    [
      'a token signed with the legacy JWT secret, which this function does not hold',
      () => userToken(svc.env, 'legacy'),
      /must set the function's JWT_SECRET/
    ],
    ['the publishable key as the bearer token', () => svc.env.SUPABASE_PUBLISHABLE_KEY, /neither this function's BACKUP_API_KEY nor a JWT/],
    ['the secret key as the bearer token', () => svc.env.SUPABASE_SECRET_KEY, /neither this function's BACKUP_API_KEY nor a JWT/]
  ]
  for (const [title, token, message] of cases) {
    it(title, async () => {
      const before = await rowCount(svc)
      const answer = await call(token())
      assert.equal(answer.status, 401, answer.error)
      assert.match(answer.error, message)
      assert.equal(await rowCount(svc), before)
      assert.equal(github.dispatches.length, 0)
    })
  }
})

function unsigned(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT', kid: signingKey(svc.env, 'ES256').kid })}.${part(claims)}.`
}

/** The classic confusion: HS256 keyed with the public key's text, hoping the verifier uses it as an HMAC secret. */
function hs256WithKey(claims: Record<string, unknown>, publicKeyText: string): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const signed = `${part({ alg: 'HS256', typ: 'JWT', kid: signingKey(svc.env, 'ES256').kid })}.${part(claims)}`
  return `${signed}.${createHmac('sha256', publicKeyText).update(signed).digest('base64url')}`
}
