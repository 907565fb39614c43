// The function's secrets, read per request so `supabase secrets set` applies without a redeploy.
// Every problem is a 500 that names the secret to set. The store's keys stay here: only the
// signature they make reaches the caller.
import { HttpError } from '../_shared/http.ts'
import type { S3Credentials, S3Location } from '../_shared/presign.ts'

export interface StoreConfig {
  location: S3Location
  credentials: S3Credentials
  /** DOWNLOAD_URL_TTL_SECONDS: how long a link works, default 5 minutes, at most an hour. */
  ttlSeconds: number
}

const DEFAULT_TTL_SECONDS = 300
/** A link is for clicking now; an hour is plenty for a slow start and short if it leaks. */
const MAX_TTL_SECONDS = 3600
const REGION = /^[a-z0-9-]{1,40}$/
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export const env = (name: string): string => (Deno.env.get(name) ?? '').trim()

export function readStoreConfig(): StoreConfig {
  const bucket = env('BACKUP_S3_BUCKET')
  if (!BUCKET.test(bucket)) {
    throw misconfigured(
      `The function's BACKUP_S3_BUCKET secret ${bucket ? 'is not a bucket name' : 'is not set'}: set it to the bucket the backup action uploads to (its \`bucket\` input).`
    )
  }
  const region = env('BACKUP_S3_REGION') || 'us-east-1'
  if (!REGION.test(region)) throw misconfigured('BACKUP_S3_REGION must be a region name such as eu-central-1 (or auto for R2).')
  const endpoint = env('BACKUP_S3_ENDPOINT') || undefined
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) {
    throw misconfigured(
      'BACKUP_S3_ENDPOINT must be the http(s) URL of an S3-compatible store, e.g. https://<account>.r2.cloudflarestorage.com.'
    )
  }
  const pathStyle = env('BACKUP_S3_FORCE_PATH_STYLE').toLowerCase()
  if (!['', 'true', 'false'].includes(pathStyle)) throw misconfigured('BACKUP_S3_FORCE_PATH_STYLE must be true or false.')
  const accessKeyId = env('BACKUP_S3_ACCESS_KEY_ID')
  const secretAccessKey = env('BACKUP_S3_SECRET_ACCESS_KEY')
  if (!accessKeyId || !secretAccessKey) {
    throw misconfigured(
      `The function's ${accessKeyId ? 'BACKUP_S3_SECRET_ACCESS_KEY' : 'BACKUP_S3_ACCESS_KEY_ID'} secret is not set: set the key pair of an IAM user that may only s3:GetObject the backups.`
    )
  }
  const ttl = env('DOWNLOAD_URL_TTL_SECONDS')
  const ttlSeconds = ttl ? Number(ttl) : DEFAULT_TTL_SECONDS
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
    throw misconfigured(`DOWNLOAD_URL_TTL_SECONDS must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}.`)
  }
  const sessionToken = env('BACKUP_S3_SESSION_TOKEN')
  return {
    location: { endpoint, bucket, region, forcePathStyle: pathStyle === 'true' },
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    ttlSeconds
  }
}

function misconfigured(message: string): HttpError {
  return new HttpError(500, 'misconfigured', message)
}
