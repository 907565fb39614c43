// What every backup function answers with: typed errors turned into JSON, constant-time key
// comparison, and text cleaned before it reaches a row or a caller. Supabase bundles this folder
// into each function that imports it (folders starting with `_` are not deployed on their own).

/** The table's check constraint on error_text. */
export const MAX_ERROR_TEXT = 1000

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra fields of the JSON answer (the row concerned, its ids). */
    readonly details: Record<string, unknown> = {}
  ) {
    super(message)
  }
}

/** The app calls from the browser. Credentials travel in the Authorization header, never in cookies, so any origin may ask. */
export const APP_CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  // What supabase-js sends (its `@supabase/supabase-js/cors` list).
  'access-control-allow-headers': 'authorization, x-client-info, apikey, content-type, x-retry-count, traceparent, tracestate, baggage',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-max-age': '86400'
}

/**
 * Serves a function the app calls from the browser: the CORS preflight, and the CORS headers on
 * every answer, so the app can read the errors too. An HttpError is its JSON answer; anything
 * else a 500 that points to the logs, whose message never reaches the caller.
 */
export function serveApp(name: string, handle: (request: Request) => Promise<Response>): void {
  Deno.serve(async request => {
    if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: APP_CORS })
    try {
      const response = await handle(request)
      for (const [header, value] of Object.entries(APP_CORS)) response.headers.set(header, value)
      return response
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error, APP_CORS)
      console.error(`${name}: unexpected error`, error instanceof Error ? error.message : String(error))
      return json(500, { error: `Unexpected error in ${name}; see the function logs.`, code: 'internal' }, APP_CORS)
    }
  })
}

export function errorResponse(error: HttpError, headers: Record<string, string> = {}): Response {
  const extra: Record<string, string> = { ...headers }
  if (error.status === 405) extra.allow = 'POST'
  if (error.status === 401) extra['www-authenticate'] = 'Bearer'
  return json(error.status, { error: error.message, code: error.code, ...error.details }, extra)
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' } })
}

/** What an app's call sends: at most 64 KiB. */
const MAX_APP_BODY_BYTES = 64 * 1024

/**
 * The JSON object a function the app calls was sent, {} for an empty body: 413 when too large,
 * 400 `invalid_json` when it is not a JSON object (`usage` says what to send).
 */
export async function readJsonObject(request: Request, usage: string): Promise<Record<string, unknown>> {
  const body = new Uint8Array(await request.arrayBuffer())
  if (body.byteLength > MAX_APP_BODY_BYTES) throw new HttpError(413, 'too_large', `The request body exceeds ${MAX_APP_BODY_BYTES} bytes.`)
  const text = new TextDecoder().decode(body).trim()
  if (!text) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new HttpError(400, 'invalid_json', usage)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'invalid_json', usage)
  return parsed as Record<string, unknown>
}

/** Compares SHA-256 digests byte by byte without early exit: the time says nothing about the key. */
export async function constantTimeEqual(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  const [a, b] = await Promise.all([digest(given), digest(expected)])
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return difference === 0
}

/** The bearer token of `Authorization: Bearer <token>`, or '' when there is none. */
export function bearerToken(request: Request): string {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization') ?? '')
  return (match?.[1] ?? '').trim()
}

/** error_text is shown in the app: one line, no secrets, at most the table's 1000 characters. */
export function cleanErrorText(text: string, secrets: string[]): string {
  let clean = text
  for (const secret of secrets.filter(Boolean)) clean = clean.split(secret).join('***')
  clean = clean
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '***')
    .replace(/sb_secret_[A-Za-z0-9_-]+/g, '***')
    .replace(/\s+/g, ' ')
    .trim()
  return clean.length > MAX_ERROR_TEXT ? `${clean.slice(0, MAX_ERROR_TEXT - 3)}...` : clean
}

export function clip(text: string): string {
  const line = text.replace(/\s+/g, ' ')
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}
