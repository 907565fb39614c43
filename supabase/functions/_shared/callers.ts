// Who may call a function that users call from the app (trigger-backup, backup-download): a
// signed-in user of the project (an access token that auth.ts verifies against the project's
// signing keys) or a holder of BACKUP_API_KEY. Checked by the function rather than by Supabase's
// gateway, which cannot accept the API key.
import { isApiKey, readTokenConfig, unauthorized, verifyUserToken, type Env, type TokenConfig } from './auth.ts'
import { bearerToken, HttpError } from './http.ts'

export interface AuthConfig {
  /** '' when API-key callers are not enabled. */
  apiKey: string
  tokens: TokenConfig
}

/** A user keeps their access token: a function that reads rows as the user sends it on, so that RLS decides. */
export type Caller = { kind: 'user'; userId: string; token: string } | { kind: 'api-key' }

const MIN_SECRET_LENGTH = 32

/**
 * BACKUP_API_KEY for scripts, and how signed-in users' tokens are checked: the project's signing
 * keys (SUPABASE_JWKS, or its JWKS endpoint), and JWT_SECRET only where the project still signs
 * with its legacy secret. Each secret set must be long enough to resist guessing.
 */
export function readAuthConfig(env: Env): AuthConfig {
  const config = { apiKey: env('BACKUP_API_KEY'), tokens: readTokenConfig(env) }
  for (const [name, value] of [
    ['BACKUP_API_KEY', config.apiKey],
    ['JWT_SECRET', config.tokens.legacySecret]
  ] as const) {
    if (value && value.length < MIN_SECRET_LENGTH) {
      throw new HttpError(500, 'misconfigured', `The function's ${name} secret is too short: it needs ${MIN_SECRET_LENGTH}+ characters.`)
    }
  }
  return config
}

/** The caller, or a 401 whose message ends the sentence "Only signed-in users may <purpose>". */
export async function authenticate(request: Request, config: AuthConfig, purpose: string): Promise<Caller> {
  const token = bearerToken(request)
  if (!token)
    throw unauthorized(
      'missing_credentials',
      "Send a signed-in user's access token or the BACKUP_API_KEY as 'Authorization: Bearer <token>'."
    )
  if (await isApiKey(request, config.apiKey)) return { kind: 'api-key' }
  if (token.split('.').length !== 3)
    throw unauthorized('invalid_credentials', "Invalid API key or access token: it is neither this function's BACKUP_API_KEY nor a JWT.")
  const user = await verifyUserToken(token, config.tokens, purpose)
  return { kind: 'user', userId: user.userId, token }
}

export function describeCaller(caller: Caller): string {
  return caller.kind === 'user' ? `user ${caller.userId || '(no sub)'}` : 'an API-key caller'
}
