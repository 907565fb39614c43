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

export function errorResponse(error: HttpError, headers: Record<string, string> = {}): Response {
  const extra: Record<string, string> = { ...headers }
  if (error.status === 405) extra.allow = 'POST'
  if (error.status === 401) extra['www-authenticate'] = 'Bearer'
  return json(error.status, { error: error.message, code: error.code, ...error.details }, extra)
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' } })
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
