// Presigned S3 GET URLs: AWS Signature Version 4 in the query string, on WebCrypto alone, so a
// function can hand out a short-lived download link without an SDK. The algorithm is AWS's
// "Authenticating Requests: Using Query Parameters"; __tests__/supabase/presign-vectors.test.ts
// holds it to the examples of that page and of "Derive a signing key".
// It imports nothing: Node's tests import it as it is.

export interface S3Location {
  /** https://s3.<region>.amazonaws.com when undefined; otherwise an S3-compatible store's URL. */
  endpoint: string | undefined
  bucket: string
  region: string
  /** <endpoint>/<bucket>/<key> instead of <bucket>.<endpoint host>/<key>. */
  forcePathStyle: boolean
}

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  /** Temporary credentials' token: it travels in the URL, as X-Amz-Security-Token. */
  sessionToken?: string
}

export interface PresignedUrl {
  url: string
  /** When the store stops accepting it: the signing time (to the second) plus its lifetime. */
  expiresAt: Date
}

const ALGORITHM = 'AWS4-HMAC-SHA256'
/** S3 accepts a presigned URL for at most seven days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600
/** A name that can be a host label: anything else (dots break TLS wildcards) is addressed path-style, as the SDKs do. */
const DNS_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/

/**
 * A GET URL for one object, valid for `expiresInSeconds` from `now`. `query` adds signed
 * parameters, such as `response-content-disposition`, which the store then answers with.
 */
export async function presignGetObject(
  location: S3Location,
  credentials: S3Credentials,
  key: string,
  options: { expiresInSeconds: number; now?: Date; query?: Record<string, string> }
): Promise<PresignedUrl> {
  const { expiresInSeconds, now = new Date(), query = {} } = options
  if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
    throw new RangeError(`A presigned URL lives 1 to ${MAX_PRESIGN_SECONDS} seconds, not ${expiresInSeconds}.`)
  }
  const url = objectUrl(location, key)
  const amzDate = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')
  const date = amzDate.slice(0, 8)
  const scope = `${date}/${location.region}/s3/aws4_request`
  const parameters: Record<string, string> = {
    ...query,
    'X-Amz-Algorithm': ALGORITHM,
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(expiresInSeconds),
    'X-Amz-SignedHeaders': 'host',
    ...(credentials.sessionToken ? { 'X-Amz-Security-Token': credentials.sessionToken } : {})
  }
  const canonicalQuery = Object.entries(parameters)
    .map(([name, value]) => [encodeRfc3986(name), encodeRfc3986(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
  // The payload of a GET is not known to the signer: S3 takes UNSIGNED-PAYLOAD in presigned URLs.
  const canonicalRequest = ['GET', url.pathname, canonicalQuery, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n')
  const stringToSign = [ALGORITHM, amzDate, scope, hex(await sha256(canonicalRequest))].join('\n')
  const key4 = await signingKey(credentials.secretAccessKey, date, location.region, 's3')
  const signature = hex(await hmac(key4, stringToSign))
  const signedAt = Math.floor(now.getTime() / 1000) * 1000
  return {
    url: `${url.origin}${url.pathname}?${canonicalQuery}&X-Amz-Signature=${signature}`,
    expiresAt: new Date(signedAt + expiresInSeconds * 1000)
  }
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export async function signingKey(secretAccessKey: string, date: string, region: string, service: string): Promise<Uint8Array> {
  let key: Uint8Array = new TextEncoder().encode(`AWS4${secretAccessKey}`)
  for (const part of [date, region, service, 'aws4_request']) key = await hmac(key, part)
  return key
}

/** Where the object is: its path is the key with each segment encoded once, as S3 signs it (no double encoding). */
function objectUrl(location: S3Location, key: string): URL {
  const base = new URL(location.endpoint ?? `https://s3.${location.region}.amazonaws.com`)
  const prefix = base.pathname.replace(/\/+$/, '')
  const path = key.split('/').map(encodeRfc3986).join('/')
  if (location.forcePathStyle || !DNS_BUCKET.test(location.bucket)) {
    return new URL(`${base.origin}${prefix}/${encodeRfc3986(location.bucket)}/${path}`)
  }
  return new URL(`${base.protocol}//${location.bucket}.${base.host}${prefix}/${path}`)
}

/** RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ (encodeURIComponent also spares ! ' ( ) *). */
export function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, char => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
}

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey('raw', new Uint8Array(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  return new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, new TextEncoder().encode(text)))
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, byte => byte.toString(16).padStart(2, '0')).join('')
}
