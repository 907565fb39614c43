// Who may start a backup: a signed-in user of the project (an access token that _shared/auth.ts
// verifies against the project's signing keys) or a holder of BACKUP_API_KEY. Checked here rather
// than by Supabase's gateway, which cannot accept the API key.
import { isApiKey, unauthorized, verifyUserToken, type TokenConfig } from '../_shared/auth.ts'
import { bearerToken } from '../_shared/http.ts'

export interface AuthConfig {
  /** '' when API-key callers are not enabled. */
  apiKey: string
  tokens: TokenConfig
}

export type Caller = { kind: 'user'; userId: string } | { kind: 'api-key' }

export async function authenticate(request: Request, config: AuthConfig): Promise<Caller> {
  const token = bearerToken(request)
  if (!token)
    throw unauthorized(
      'missing_credentials',
      "Send a signed-in user's access token or the BACKUP_API_KEY as 'Authorization: Bearer <token>'."
    )
  if (await isApiKey(request, config.apiKey)) return { kind: 'api-key' }
  if (token.split('.').length !== 3)
    throw unauthorized('invalid_credentials', "Invalid API key or access token: it is neither this function's BACKUP_API_KEY nor a JWT.")
  const user = await verifyUserToken(token, config.tokens, 'start a backup')
  return { kind: 'user', userId: user.userId }
}
