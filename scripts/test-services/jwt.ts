// JWTs on node:crypto, as the stand-ins need them: HS256 for the legacy API keys and user tokens
// signed with the legacy secret, ES256/RS256 for user tokens signed with the project's signing
// keys (published as a JWKS). Written here rather than with a library: the functions under test
// verify with jose, so the stand-in must not share their code.
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, timingSafeEqual, verify } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'

export type JwtClaims = Record<string, unknown> & { role?: string; exp?: number; iat?: number }

export type JwtResult = { ok: true; claims: JwtClaims } | { ok: false; reason: 'malformed' | 'signature' | 'expired'; message: string }

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url')

export function signJwt(claims: JwtClaims, secret: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = b64url(JSON.stringify(claims))
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

/** Supabase's demo-style keys: role claim, iss "supabase-demo", an expiry far in the future. */
export function supabaseKey(role: 'anon' | 'service_role', secret: string): string {
  const iat = Math.floor(Date.now() / 1000)
  return signJwt({ role, iss: 'supabase-demo', iat, exp: iat + 10 * 365 * 24 * 3600 }, secret)
}

export function verifyJwt(token: string, secret: string, nowSec = Date.now() / 1000): JwtResult {
  const parts = token.split('.')
  if (parts.length !== 3) {
    // PostgREST (jose) reports a token that is not three parts as a compact-JWS decode error.
    return { ok: false, reason: 'malformed', message: 'Expected 3 parts in JWT; got ' + parts.length }
  }
  const [head, body, sig] = parts as [string, string, string]
  let header: unknown
  let claims: unknown
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'))
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed', message: 'JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 1)' }
  }
  if (!isObject(header) || header['alg'] !== 'HS256' || !isObject(claims)) {
    return { ok: false, reason: 'malformed', message: 'JWSError JWSInvalidSignature' }
  }
  const expected = createHmac('sha256', secret).update(`${head}.${body}`).digest()
  const given = Buffer.from(sig, 'base64url')
  // timingSafeEqual throws on length mismatch, so compare lengths first (that leaks nothing useful).
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature', message: 'JWSError JWSInvalidSignature' }
  }
  const exp = claims['exp']
  if (typeof exp === 'number' && nowSec >= exp) {
    return { ok: false, reason: 'expired', message: 'JWT expired' }
  }
  return { ok: true, claims: claims as JwtClaims }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A project signing key (Supabase's asymmetric JWT signing keys): the private half stays with the tests. */
export interface SigningKey {
  kid: string
  alg: 'ES256' | 'RS256'
  privateJwk: JsonWebKey
  publicJwk: JsonWebKey & { kid: string; alg: string; use: string; key_ops: string[] }
}

export function newSigningKey(alg: SigningKey['alg'], kid = randomUUID()): SigningKey {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    kid,
    alg,
    privateJwk: privateKey.export({ format: 'jwk' }),
    // As Supabase's JWKS publishes them: the public half, its kid and alg, for verifying only.
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig', key_ops: ['verify'] }
  }
}

/** A JWT signed with an asymmetric signing key, as Supabase Auth issues user tokens; `header` may override alg or kid. */
export function signAsymmetric(
  claims: JwtClaims,
  key: Pick<SigningKey, 'kid' | 'alg' | 'privateJwk'>,
  header: Record<string, unknown> = {}
): string {
  const head = b64url(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header }))
  const body = b64url(JSON.stringify(claims))
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), {
    key: createPrivateKey({ key: key.privateJwk, format: 'jwk' }),
    ...(key.alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {})
  })
  return `${head}.${body}.${b64url(signature)}`
}

/**
 * A user's access token as the gateway checks it: HS256 with the legacy secret, or ES256/RS256 with
 * the key of the JWKS its kid names. Each key checks only its own algorithm.
 */
export function verifyUserJwt(
  token: string,
  keys: { jwtSecret: string; jwks: readonly SigningKey['publicJwk'][] },
  nowSec = Date.now() / 1000
): JwtResult {
  const parts = token.split('.')
  if (parts.length !== 3) return verifyJwt(token, keys.jwtSecret, nowSec)
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8'))
  } catch {
    return verifyJwt(token, keys.jwtSecret, nowSec)
  }
  if (!isObject(header) || header['alg'] === 'HS256') return verifyJwt(token, keys.jwtSecret, nowSec)
  const jwk = keys.jwks.find(key => key.kid === header['kid'])
  if (!jwk || jwk.alg !== header['alg']) return { ok: false, reason: 'signature', message: 'No suitable key or wrong key type' }
  const [head, body, signature] = parts as [string, string, string]
  const valid = verify(
    'sha256',
    Buffer.from(`${head}.${body}`),
    { key: createPublicKey({ key: jwk, format: 'jwk' }), ...(jwk.alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {}) },
    Buffer.from(signature, 'base64url')
  )
  if (!valid) return { ok: false, reason: 'signature', message: 'JWSError JWSInvalidSignature' }
  let claims: unknown
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed', message: 'JWSError JWSInvalidSignature' }
  }
  if (!isObject(claims)) return { ok: false, reason: 'malformed', message: 'JWSError JWSInvalidSignature' }
  if (typeof claims['exp'] === 'number' && nowSec >= claims['exp']) return { ok: false, reason: 'expired', message: 'JWT expired' }
  return { ok: true, claims: claims as JwtClaims }
}
