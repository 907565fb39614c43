import type { InputProblem, InputReader } from '../runner/inputs.js'
import { clip, isHttpUrl, parseBoolean } from '../runner/inputs.js'

/** The inputs that say where the archives are and how to reach them, for backup and restore alike. */
export const StoreInput = {
  Bucket: 'bucket',
  Region: 'region',
  Endpoint: 'endpoint',
  ForcePathStyle: 'force-path-style',
  AwsAccessKeyId: 'aws-access-key-id',
  AwsSecretAccessKey: 'aws-secret-access-key',
  AwsSessionToken: 'aws-session-token'
} as const
export type StoreInputName = (typeof StoreInput)[keyof typeof StoreInput]

/** Masked before anything is printed (the key id too: it names the account). */
export const STORE_SECRET_INPUTS = [StoreInput.AwsSecretAccessKey, StoreInput.AwsSessionToken, StoreInput.AwsAccessKeyId] as const

export interface StoreCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string | undefined
}

/** Where the archives are kept, and how to reach them. */
export interface StoreLocation {
  bucket: string
  region: string
  endpoint: string | undefined
  forcePathStyle: boolean
  /** undefined: use the SDK's default chain (env, OIDC web identity, instance profile). */
  credentials: StoreCredentials | undefined
}

// S3's naming rules, plus `_` which R2, MinIO and older S3 buckets allow.
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/
const REGION = /^[a-z]{2}(-[a-z0-9]+)+$|^auto$/

/** Where the archives are: bucket, region, endpoint, addressing and credentials. */
export function parseStoreLocation(read: InputReader<StoreInputName>, env: NodeJS.ProcessEnv, problems: InputProblem[]): StoreLocation {
  const bucket = read(StoreInput.Bucket)
  if (bucket === '') {
    problems.push({ input: StoreInput.Bucket, message: 'is required: the name of the bucket that holds the archives.' })
  } else if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
    problems.push({
      input: StoreInput.Bucket,
      message: `must be a bucket name (3-63 lowercase letters, digits, '.', '-'), not a URL or path; got '${clip(bucket)}'.`
    })
  }

  const region = read(StoreInput.Region) || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!REGION.test(region)) {
    problems.push({
      input: StoreInput.Region,
      message: `must be a region name like eu-west-1 (or 'auto' for R2), got '${clip(region)}'.`
    })
  }

  const rawEndpoint = read(StoreInput.Endpoint)
  let endpoint: string | undefined
  if (rawEndpoint !== '') {
    if (isHttpUrl(rawEndpoint)) endpoint = rawEndpoint.replace(/\/+$/, '')
    else {
      problems.push({
        input: StoreInput.Endpoint,
        message: `must be the http(s) URL of an S3-compatible store, such as https://<account>.r2.cloudflarestorage.com; got '${clip(rawEndpoint)}'.`
      })
    }
  }
  const forcePathStyle = parseBoolean(read, StoreInput.ForcePathStyle, problems)
  const credentials = parseCredentials(read, problems)
  return { bucket, region, endpoint, forcePathStyle, credentials }
}

function parseCredentials(read: InputReader<StoreInputName>, problems: InputProblem[]): StoreCredentials | undefined {
  const accessKeyId = read(StoreInput.AwsAccessKeyId)
  const secretAccessKey = read(StoreInput.AwsSecretAccessKey)
  const sessionToken = read(StoreInput.AwsSessionToken) || undefined
  if (accessKeyId === '' && secretAccessKey === '') {
    if (sessionToken) {
      problems.push({ input: StoreInput.AwsSessionToken, message: "needs 'aws-access-key-id' and 'aws-secret-access-key' as well." })
    }
    return undefined
  }
  if (accessKeyId === '') {
    problems.push({ input: StoreInput.AwsAccessKeyId, message: "is required when 'aws-secret-access-key' is set." })
  }
  if (secretAccessKey === '') {
    problems.push({ input: StoreInput.AwsSecretAccessKey, message: "is required when 'aws-access-key-id' is set." })
  }
  return { accessKeyId, secretAccessKey, sessionToken }
}
