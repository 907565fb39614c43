// User access tokens as Supabase Auth issues them, signed with the lane's keys: the project's
// asymmetric signing keys (ES256 current, RS256 the other key of a rotation) or the legacy JWT secret.
import { randomUUID } from 'node:crypto'
import { Gateway, type KeyState, type ProjectKeys } from '../../scripts/test-services/gateway.js'
import { signAsymmetric, signJwt, type JwtClaims, type SigningKey } from '../../scripts/test-services/jwt.js'
import type { ServicesEnv } from './services.js'

export type TokenSigner = 'ES256' | 'RS256' | 'legacy'

/** The project's signing keys with their private halves (test-only), by algorithm. */
export function signingKey(env: ServicesEnv, alg: SigningKey['alg']): SigningKey {
  const key = (JSON.parse(env.SIGNING_KEYS) as SigningKey[]).find(candidate => candidate.alg === alg)
  if (!key) throw new Error(`the services have no ${alg} signing key`)
  return key
}

/** A signed-in user's token: role and audience `authenticated`, a subject, an hour to live; `claims` override (undefined removes). */
export function userToken(
  env: ServicesEnv,
  signer: TokenSigner = 'ES256',
  claims: JwtClaims = {},
  header: Record<string, unknown> = {}
): string {
  const now = Math.floor(Date.now() / 1000)
  const payload = Object.fromEntries(
    Object.entries({
      iss: `${env.SUPABASE_URL}/auth/v1`,
      aud: 'authenticated',
      role: 'authenticated',
      sub: randomUUID(),
      iat: now,
      exp: now + 3600,
      ...claims
    }).filter(([, value]) => value !== undefined)
  )
  return signer === 'legacy' ? signJwt(payload, env.JWT_SECRET) : signAsymmetric(payload, signingKey(env, signer), header)
}

/** The lane's keys, as the gateway stand-in holds them. */
export function projectKeys(env: ServicesEnv): ProjectKeys {
  return {
    jwtSecret: env.JWT_SECRET,
    anonKey: env.SUPABASE_ANON_KEY,
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
    publishableKey: env.SUPABASE_PUBLISHABLE_KEY,
    secretKey: env.SUPABASE_SECRET_KEY,
    signingKeys: (JSON.parse(env.SUPABASE_JWKS) as { keys: SigningKey['publicJwk'][] }).keys
  }
}

/** The variables Supabase gives a function in this key state, for a function a test starts itself. */
export function functionEnvFor(env: ServicesEnv, state: KeyState): Record<string, string> {
  const gateway = new Gateway(projectKeys(env))
  gateway.state = state
  return { SUPABASE_URL: env.SUPABASE_URL, ...gateway.functionEnv() }
}
