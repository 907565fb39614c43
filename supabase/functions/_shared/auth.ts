// Who the backup functions are, and who calls them: one module for every function.
//
// - The admin key the functions use on the database API: the project's secret key from
//   SUPABASE_SECRET_KEYS (what Supabase injects today), else the legacy SUPABASE_SERVICE_ROLE_KEY.
//   An opaque secret key is not a JWT: it goes only in the `apikey` header, never as a bearer token.
// - Callers: BACKUP_API_KEY (compared in constant time), or a signed-in user's access token,
//   verified with jose against the project's JWKS (ES256/RS256 signing keys), or, where the
//   project still signs with it, the legacy JWT secret (HS256). Each key checks only its own
//   algorithms, so a token's header never picks how it is checked: `alg: none` never passes, an
//   HS256 token is never checked with a public key, and a `kid` the JWKS does not have is refused.
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose'
import { bearerToken, constantTimeEqual, HttpError } from './http.ts'

export type Env = (name: string) => string

/** The key the function sends to the database API, and where it came from (for messages: never the key itself). */
export interface AdminKey {
  key: string
  /** `secret`: an opaque sb_secret_ key; `legacy`: the service_role JWT. */
  kind: 'secret' | 'legacy'
  /** The variable it was read from, e.g. `SUPABASE_SECRET_KEYS["default"]`. */
  source: string
}

/** The key's name in SUPABASE_SECRET_KEYS (unless BACKUP_SECRET_KEY_NAME names another) and in SUPABASE_PUBLISHABLE_KEYS. */
const DEFAULT_KEY_NAME = 'default'
const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256']
/** jose checks exp and nbf only when present: a user token must have an expiry. */
const REQUIRED_CLAIMS = ['exp']
/** Supabase Auth's audience and role for a signed-in user. */
const USER_AUDIENCE = 'authenticated'
const USER_ROLE = 'authenticated'

/**
 * The project's admin key: SUPABASE_SECRET_KEYS[BACKUP_SECRET_KEY_NAME or "default"], else the
 * legacy SUPABASE_SERVICE_ROLE_KEY. A 500 naming every variable tried when there is none.
 */
export function readAdminKey(env: Env): AdminKey {
  const name = env('BACKUP_SECRET_KEY_NAME') || DEFAULT_KEY_NAME
  const secretKeys = parseKeyDictionary(env('SUPABASE_SECRET_KEYS'), 'SUPABASE_SECRET_KEYS')
  const secret = secretKeys[name]
  if (secret) return { key: secret, kind: 'secret', source: `SUPABASE_SECRET_KEYS["${name}"]` }
  if (env('BACKUP_SECRET_KEY_NAME')) {
    throw misconfigured(
      `BACKUP_SECRET_KEY_NAME names the secret key "${name}", but SUPABASE_SECRET_KEYS has ${describeNames(secretKeys)}: set it to the name of a secret key of the project (Project Settings > API Keys), or unset it to use "default".`
    )
  }
  const legacy = env('SUPABASE_SERVICE_ROLE_KEY')
  if (legacy) return { key: legacy, kind: 'legacy', source: 'SUPABASE_SERVICE_ROLE_KEY' }
  throw misconfigured(
    `No key for the database API: tried SUPABASE_SECRET_KEYS["${name}"] (${describeNames(secretKeys)}) and SUPABASE_SERVICE_ROLE_KEY (not set). Create a secret key in the dashboard (Project Settings > API Keys); Supabase provides it to functions as SUPABASE_SECRET_KEYS.`
  )
}

/**
 * The project's public key, which a function sends as `apikey` when it reads the database as a
 * signed-in user (the user's token as the bearer): SUPABASE_PUBLISHABLE_KEYS["default"], else
 * the legacy SUPABASE_ANON_KEY. Either makes a request run as the token's role, so RLS decides.
 */
export function readPublicKey(env: Env): string {
  const publishable = parseKeyDictionary(env('SUPABASE_PUBLISHABLE_KEYS'), 'SUPABASE_PUBLISHABLE_KEYS')[DEFAULT_KEY_NAME]
  const key = publishable || env('SUPABASE_ANON_KEY')
  if (key) return key
  throw misconfigured(
    'No public key to read the table as the signed-in user: SUPABASE_PUBLISHABLE_KEYS["default"] and SUPABASE_ANON_KEY are not set. Supabase provides them to functions; a self-hosted project must set SUPABASE_ANON_KEY.'
  )
}

/** The headers that carry the admin key: an opaque key as `apikey` only, the legacy JWT also as the bearer token. */
export function adminHeaders(admin: AdminKey): Record<string, string> {
  return admin.kind === 'secret' ? { apikey: admin.key } : { apikey: admin.key, authorization: `Bearer ${admin.key}` }
}

/** Why the database API refused the admin key, as a 500 the function's owner can act on. */
export function adminKeyRefused(admin: AdminKey, status: number, gatewayMessage: string): HttpError {
  if (admin.kind === 'legacy' && /legacy api keys are disabled/i.test(gatewayMessage)) {
    return misconfigured(
      `The database API refused the function's ${admin.source}: this project's legacy API keys are disabled. Create a secret key (Project Settings > API Keys): Supabase provides it to functions as SUPABASE_SECRET_KEYS["default"], which this function uses first (BACKUP_SECRET_KEY_NAME picks another name).`
    )
  }
  return misconfigured(
    `The database API refused the function's ${admin.source} (HTTP ${status}${gatewayMessage ? `: ${gatewayMessage}` : ''}).`
  )
}

/** Whether the bearer token is this function's BACKUP_API_KEY (constant time; false when the function has none). */
export async function isApiKey(request: Request, apiKey: string): Promise<boolean> {
  const token = bearerToken(request)
  return apiKey !== '' && token !== '' && (await constantTimeEqual(token, apiKey))
}

/** How user tokens are checked: the project's URL (for its JWKS), SUPABASE_JWKS, and the legacy JWT secret if the project still has one. */
export interface TokenConfig {
  supabaseUrl: string
  /** SUPABASE_JWKS, parsed; undefined when the variable is not set (the JWKS is then fetched). */
  jwks: JSONWebKeySet | undefined
  /** JWT_SECRET: '' unless the project still signs user tokens with its legacy secret. */
  legacySecret: string
}

export function readTokenConfig(env: Env): TokenConfig {
  const raw = env('SUPABASE_JWKS')
  let jwks: JSONWebKeySet | undefined
  if (raw) {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      throw misconfigured('SUPABASE_JWKS is not JSON: it should be the JSON Web Key Set that Supabase provides to functions.')
    }
    // A bare array of keys is accepted too, as Supabase's own helpers do.
    const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown } | null)?.keys
    if (!Array.isArray(keys)) throw misconfigured('SUPABASE_JWKS is not a JSON Web Key Set ({"keys": [...]}).')
    jwks = { keys: keys as JSONWebKeySet['keys'] }
  }
  return { supabaseUrl: env('SUPABASE_URL').replace(/\/+$/, ''), jwks, legacySecret: env('JWT_SECRET') }
}

/** A signed-in user, as their verified access token says. */
export interface User {
  userId: string
  claims: JWTPayload
}

/** One remote key set per JWKS URL, kept for the life of the function: jose caches it and refetches once for an unknown kid. */
const remoteKeySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>()

/**
 * Verifies a user's access token: signed by a key of the project's JWKS (ES256 or RS256), or with
 * the legacy JWT secret (HS256) where the function has one; not expired, not before its nbf, with
 * role `authenticated`, a subject, and audience `authenticated`. Anything else is a 401 whose
 * message ends the sentence "Only signed-in users may <purpose>".
 */
export async function verifyUserToken(token: string, config: TokenConfig, purpose: string): Promise<User> {
  if (token.split('.').length !== 3) {
    throw unauthorized('invalid_credentials', 'Invalid credentials: the bearer token is not an access token (a JWT).')
  }
  let payload: JWTPayload
  try {
    payload = await verifyWithProjectKeys(token, config)
  } catch (error) {
    throw tokenRefused(error, config)
  }
  // The role first: the project's own keys are JWTs too (anon, service_role), and say why they are refused.
  if (payload.role !== USER_ROLE) {
    throw unauthorized('not_signed_in', `Only signed-in users may ${purpose}; this token's role is '${String(payload.role)}'.`)
  }
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
  if (!audiences.includes(USER_AUDIENCE)) {
    throw unauthorized('invalid_token', `Invalid access token: its audience (aud) is not '${USER_AUDIENCE}'.`)
  }
  if (typeof payload.sub !== 'string' || payload.sub === '')
    throw unauthorized('invalid_token', 'Invalid access token: it names no user (sub).')
  return { userId: payload.sub, claims: payload }
}

async function verifyWithProjectKeys(token: string, config: TokenConfig): Promise<JWTPayload> {
  const options = { requiredClaims: REQUIRED_CLAIMS }
  try {
    return (await jwtVerify(token, projectKeySet(config), { ...options, algorithms: ASYMMETRIC_ALGORITHMS })).payload
  } catch (error) {
    // Only a token the key set refused for its algorithm may be tried with the legacy secret, and only as HS256.
    if (!(error instanceof errors.JOSEAlgNotAllowed) || !config.legacySecret) throw error
    const secret = new TextEncoder().encode(config.legacySecret)
    return (await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] })).payload
  }
}

/** SUPABASE_JWKS, falling back to the project's JWKS endpoint for a kid it does not have (a key added since). */
function projectKeySet(config: TokenConfig): (header: Parameters<ReturnType<typeof createLocalJWKSet>>[0]) => Promise<CryptoKey> {
  const url = `${config.supabaseUrl}/auth/v1/.well-known/jwks.json`
  let remote = remoteKeySets.get(url)
  if (!remote) {
    remote = createRemoteJWKSet(new URL(url))
    remoteKeySets.set(url, remote)
  }
  const remoteSet = remote
  const local = config.jwks ? createLocalJWKSet(config.jwks) : undefined
  return async header => {
    if (!local) return remoteSet(header)
    try {
      return await local(header)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      return remoteSet(header)
    }
  }
}

function tokenRefused(error: unknown, config: TokenConfig): HttpError {
  if (error instanceof errors.JWTExpired)
    return unauthorized('token_expired', 'The access token has expired: refresh the session and try again.')
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'exp') return unauthorized('invalid_token', 'Invalid access token: it has no expiry (exp).')
    if (error.claim === 'nbf') return unauthorized('invalid_token', 'The access token is not valid yet (nbf).')
    return unauthorized('invalid_token', `Invalid access token: its ${error.claim} claim is not valid (${error.reason}).`)
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return unauthorized(
      'invalid_token',
      config.legacySecret
        ? 'Invalid access token: it is not signed with an algorithm this project uses (ES256, RS256, or HS256 with the legacy JWT secret).'
        : "Invalid access token: it is not signed by one of the project's signing keys (ES256 or RS256). A project that still signs tokens with its legacy JWT secret must set the function's JWT_SECRET secret."
    )
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return unauthorized('invalid_token', "Invalid access token: it names a signing key (kid) that is not in the project's JWKS.")
  }
  // Not an answer about the token: the JWKS endpoint could not be read (network, timeout, not a JWKS).
  if (!(error instanceof errors.JOSEError) || error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new HttpError(503, 'jwks_unavailable', "The project's JWKS could not be read to check the access token; retry later.")
  }
  return unauthorized('invalid_token', "Invalid access token: its signature does not match the project's signing keys.")
}

/** A JSON dictionary of key names to keys (SUPABASE_SECRET_KEYS); {} when unset. Malformed is a 500: never guessed around. */
function parseKeyDictionary(raw: string, variable: string): Record<string, string> {
  if (!raw) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw misconfigured(`${variable} is not JSON: it should be a dictionary of key names to keys, e.g. {"default": "sb_secret_..."}.`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw misconfigured(`${variable} is not a dictionary of key names to keys, e.g. {"default": "sb_secret_..."}.`)
  }
  return Object.fromEntries(
    Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '')
  )
}

function describeNames(keys: Record<string, string>): string {
  const names = Object.keys(keys)
  return names.length === 0 ? 'no keys' : `only ${names.map(name => `"${name}"`).join(', ')}`
}

function misconfigured(message: string): HttpError {
  return new HttpError(500, 'misconfigured', message)
}

export function unauthorized(code: string, message: string): HttpError {
  return new HttpError(401, code, message)
}
