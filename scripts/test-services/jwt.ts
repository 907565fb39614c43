// Minimal HS256 JWT sign/verify on node:crypto: enough for Supabase-style API keys
// without pulling a JWT library into the project.
import { createHmac, timingSafeEqual } from 'node:crypto'

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
