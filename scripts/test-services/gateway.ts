// Supabase's API gateway as it is since the new API keys: which keys a project accepts, the role
// each request runs as, the JWKS it publishes, and what it gives edge functions. A project goes
// through three states, which the tests switch between:
//   legacy-only      the JWT-based anon and service_role keys; user tokens signed with the legacy
//                    JWT secret (HS256); no publishable or secret keys yet, an empty JWKS.
//   both             also opaque sb_publishable_/sb_secret_ keys, and asymmetric signing keys.
//   legacy-disabled  the legacy keys are turned off: they get 401 "Legacy API keys are disabled".
// Opaque keys are not JWTs: the gateway maps them to a role and never verifies them as one, also
// when a client forwards the same value as the bearer token (supabase-js does).
import { verifyUserJwt, type JwtClaims, type SigningKey } from './jwt.js'

export const KEY_STATES = ['legacy-only', 'both', 'legacy-disabled'] as const
export type KeyState = (typeof KEY_STATES)[number]

export interface ProjectKeys {
  /** The legacy JWT secret: signs the legacy keys and, in legacy-only, user tokens. */
  jwtSecret: string
  anonKey: string
  serviceRoleKey: string
  publishableKey: string
  secretKey: string
  /** Public halves of the project's asymmetric signing keys (two during a rotation). */
  signingKeys: SigningKey['publicJwk'][]
}

export type GatewayAnswer =
  | { ok: true; claims: JwtClaims }
  | { ok: false; status: number; body: { message: string } & Record<string, unknown>; headers?: Record<string, string> }

type ApiKey = { kind: 'legacy' | 'secret' | 'publishable'; role: 'anon' | 'service_role' }

/** What the gateway accepted, for tests that check which key a client sent and how. */
export interface KeyUse {
  legacy: number
  secret: number
  publishable: number
  /** An opaque key that also came as `Authorization: Bearer` (accepted, as supabase-js does it). */
  opaqueAsBearer: number
}

export class Gateway {
  state: KeyState = 'both'

  constructor(readonly keys: ProjectKeys) {}

  /** The key-auth gate, then the JWT check in front of PostgREST: the claims the request runs with. */
  authorize(apikey: string | undefined, authorization: string | undefined, use?: KeyUse): GatewayAnswer {
    const key = apikey === undefined ? undefined : this.apiKey(apikey)
    if (!key) return refuse({ message: 'Invalid API key', hint: 'Double check your API key.' })
    if (key.kind === 'legacy' && this.state === 'legacy-disabled') {
      return refuse({
        message: 'Legacy API keys are disabled',
        hint: 'Your legacy API keys (anon, service_role) were disabled. Re-enable them in the Supabase dashboard, or use the new publishable/secret keys.'
      })
    }
    const bearer = /^bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim()
    if (use) {
      use[key.kind] += 1
      if (key.kind !== 'legacy' && bearer === apikey) use.opaqueAsBearer += 1
    }
    // The key alone (or forwarded as the bearer token too): an opaque key is its role.
    if ((bearer === undefined || bearer === apikey) && key.kind !== 'legacy') return { ok: true, claims: { role: key.role } }
    const token = bearer ?? (apikey as string)
    const result = verifyUserJwt(token, this.verificationKeys())
    if (result.ok) return { ok: true, claims: result.claims }
    const code = result.reason === 'expired' ? 'PGRST303' : 'PGRST301'
    return refuse(
      { code, details: null, hint: null, message: result.message },
      { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${result.message}"` }
    )
  }

  /** `verify_jwt = true` in front of a function: the bearer token must be a JWT the project signed. */
  verifiesJwt(authorization: string | undefined): boolean {
    const bearer = /^bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim() ?? ''
    return verifyUserJwt(bearer, this.verificationKeys()).ok
  }

  /** `<url>/auth/v1/.well-known/jwks.json`: the public signing keys; none before the project has them. */
  jwks(): { keys: SigningKey['publicJwk'][] } {
    return { keys: this.state === 'legacy-only' ? [] : this.keys.signingKeys }
  }

  /** The variables Supabase gives every edge function in this state (besides SUPABASE_URL). */
  functionEnv(): Record<string, string> {
    const { keys } = this
    return {
      // Still given when the legacy keys are disabled: they just stop working.
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      SUPABASE_JWKS: JSON.stringify(this.jwks()),
      ...(this.state === 'legacy-only'
        ? {}
        : {
            SUPABASE_SECRET_KEYS: JSON.stringify({ default: keys.secretKey }),
            SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: keys.publishableKey })
          })
    }
  }

  private apiKey(value: string): ApiKey | undefined {
    const { keys } = this
    if (value === keys.anonKey) return { kind: 'legacy', role: 'anon' }
    if (value === keys.serviceRoleKey) return { kind: 'legacy', role: 'service_role' }
    // Opaque keys do not exist before the project creates them.
    if (this.state === 'legacy-only') return undefined
    if (value === keys.publishableKey) return { kind: 'publishable', role: 'anon' }
    if (value === keys.secretKey) return { kind: 'secret', role: 'service_role' }
    return undefined
  }

  private verificationKeys(): { jwtSecret: string; jwks: SigningKey['publicJwk'][] } {
    return { jwtSecret: this.keys.jwtSecret, jwks: this.jwks().keys }
  }
}

function refuse(body: { message: string } & Record<string, unknown>, headers?: Record<string, string>): GatewayAnswer {
  return { ok: false, status: 401, body, ...(headers ? { headers } : {}) }
}
