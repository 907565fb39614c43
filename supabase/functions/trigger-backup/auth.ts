// Who may start a backup: a signed-in user of the project (an HS256 access token signed with the
// project's JWT secret, role `authenticated`, not expired) or a holder of BACKUP_API_KEY.
// Checked here rather than by Supabase's gateway, which cannot accept the API key.
import { bearerToken, constantTimeEqual, HttpError } from '../_shared/http.ts'

export interface AuthConfig {
  /** '' when API-key callers are not enabled. */
  apiKey: string
  /** '' when signed-in users are not enabled. */
  jwtSecret: string
}

export type Caller = { kind: 'user'; userId: string } | { kind: 'api-key' }

interface Claims {
  role?: unknown
  exp?: unknown
  nbf?: unknown
  sub?: unknown
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

export async function authenticate(request: Request, config: AuthConfig): Promise<Caller> {
  const token = bearerToken(request)
  if (!token)
    throw unauthorized(
      'missing_credentials',
      "Send a signed-in user's access token or the BACKUP_API_KEY as 'Authorization: Bearer <token>'."
    )
  if (config.apiKey && (await constantTimeEqual(token, config.apiKey))) return { kind: 'api-key' }
  if (token.split('.').length !== 3)
    throw unauthorized('invalid_credentials', "Invalid API key or access token: it is neither this function's BACKUP_API_KEY nor a JWT.")
  if (!config.jwtSecret) {
    throw unauthorized(
      'invalid_credentials',
      'Signed-in users cannot start backups here: the function has no JWT_SECRET, so only BACKUP_API_KEY is accepted.'
    )
  }
  const claims = await verifyHs256(token, config.jwtSecret)
  if (typeof claims.exp !== 'number') throw unauthorized('invalid_token', 'Invalid access token: it has no expiry (exp).')
  const now = Date.now() / 1000
  if (now >= claims.exp) throw unauthorized('token_expired', 'The access token has expired: refresh the session and try again.')
  if (typeof claims.nbf === 'number' && now < claims.nbf) throw unauthorized('invalid_token', 'The access token is not valid yet (nbf).')
  if (claims.role !== 'authenticated') {
    throw unauthorized('not_signed_in', `Only signed-in users may start a backup; this token's role is '${String(claims.role)}'.`)
  }
  return { kind: 'user', userId: typeof claims.sub === 'string' ? claims.sub : '' }
}

/** The claims of a compact JWS whose HS256 signature matches the secret; anything else is a 401. */
async function verifyHs256(token: string, secret: string): Promise<Claims> {
  const [header = '', payload = '', signature = ''] = token.split('.')
  if (![header, payload, signature].every(part => BASE64URL.test(part))) throw invalidToken()
  let alg: unknown
  let claims: unknown
  try {
    alg = (JSON.parse(new TextDecoder().decode(decodeBase64Url(header))) as { alg?: unknown }).alg
    claims = JSON.parse(new TextDecoder().decode(decodeBase64Url(payload)))
  } catch {
    throw invalidToken()
  }
  // Only HS256: a token may not choose how it is checked (`none`, or a public-key algorithm).
  if (alg !== 'HS256' || typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw invalidToken()
  const encoder = new TextEncoder()
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
  // WebCrypto's verify compares in constant time.
  if (!(await crypto.subtle.verify('HMAC', key, decodeBase64Url(signature), encoder.encode(`${header}.${payload}`)))) {
    throw unauthorized('invalid_token', "Invalid access token: its signature does not match this project's JWT secret.")
  }
  return claims as Claims
}

function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4))
  return Uint8Array.from(binary, char => char.charCodeAt(0))
}

function invalidToken(): HttpError {
  return unauthorized('invalid_token', 'Invalid access token: not an HS256 JWT.')
}

function unauthorized(code: string, message: string): HttpError {
  return new HttpError(401, code, message)
}
