import { clip, inputLines, isHttpUrl, type InputProblem, type InputReader } from '../../runner/inputs.js'
import type { StoreSettings } from '../../store/s3.js'

/**
 * The inputs that reach Supabase Storage's S3 endpoint, for backup and restore alike. They are
 * apart from the archive store's (`endpoint`, `aws-*`): Storage has its own endpoint, region and
 * key pair, and the archive may well live in AWS S3.
 */
export const StorageInput = {
  StorageBuckets: 'storage-buckets',
  StorageEndpoint: 'storage-endpoint',
  StorageRegion: 'storage-region',
  StorageAccessKeyId: 'storage-access-key-id',
  StorageSecretAccessKey: 'storage-secret-access-key',
  StorageSessionToken: 'storage-session-token'
} as const
export type StorageInputName = (typeof StorageInput)[keyof typeof StorageInput] | 'supabase-url'

/** Masked before anything is printed (the key id too, as for the store: it names the key). */
export const STORAGE_SECRET_INPUTS = [
  StorageInput.StorageSecretAccessKey,
  StorageInput.StorageSessionToken,
  StorageInput.StorageAccessKeyId
] as const

/** Which buckets: every bucket of the project (`*`), or these names, in the order given. */
export type BucketSelection = { all: true } | { all: false; names: string[] }

/** The Storage endpoint, reached like any S3 store, and the buckets to back up or restore into. */
export interface StorageTarget {
  buckets: BucketSelection
  settings: StoreSettings & { endpoint: string }
}

/**
 * Supabase's bucket names: what its dashboard accepts (letters, digits, and `_-.` and spaces in
 * older projects). Anything else is refused here rather than sent to the endpoint as a path.
 */
const BUCKET_NAME = /^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,99}$/u
export function isBucketName(name: string): boolean {
  return BUCKET_NAME.test(name)
}

const REGION = /^[a-z]{2}(-[a-z0-9]+)+$|^local$|^auto$/

/**
 * `storage-buckets`' lines (`#` comments and blank lines ignored): '*' alone for every bucket,
 * undefined when empty. Backup and restore each read the lines their own way.
 */
export function bucketLines(raw: string, problems: InputProblem[]): string[] | '*' | undefined {
  const lines = inputLines(raw)
  if (lines.length === 0) return undefined
  if (!lines.includes('*')) return lines
  if (lines.length > 1) {
    problems.push({ input: StorageInput.StorageBuckets, message: "has '*' (every bucket) and bucket names: use one or the other." })
  }
  return '*'
}

/** The backup's `storage-buckets`: one bucket name per line, or `*` for every bucket; undefined when empty. */
export function parseBucketList(raw: string, problems: InputProblem[]): BucketSelection | undefined {
  const lines = bucketLines(raw, problems)
  if (lines === undefined || lines === '*') return lines && { all: true }
  const names: string[] = []
  for (const name of lines) {
    const input = StorageInput.StorageBuckets
    if (!isBucketName(name)) {
      problems.push({
        input,
        message: `has '${clip(name)}', which is not a bucket name; list bucket names one per line, or '*' for every bucket.`
      })
    } else if (names.includes(name)) {
      problems.push({ input, message: `names the bucket '${clip(name)}' twice.` })
    } else names.push(name)
  }
  return { all: false, names }
}

/** The buckets to back up, and how to reach them; undefined without `storage-buckets`. */
export function parseStorageTarget(read: InputReader<StorageInputName>, problems: InputProblem[]): StorageTarget | undefined {
  const buckets = parseBucketList(read(StorageInput.StorageBuckets), problems)
  const settings = parseStorageConnection(read, buckets !== undefined, problems)
  return buckets && settings ? { buckets, settings } : undefined
}

/**
 * The Storage endpoint and its credentials, once `storage-buckets` is set (`selected`): the
 * endpoint defaults to `<supabase-url>/storage/v1/s3`; region and the key pair have no default
 * (the archive store's credentials must never be sent to Storage, nor the other way round).
 * Without `storage-buckets`, any of them set is a mistake worth saying.
 */
export function parseStorageConnection(
  read: InputReader<StorageInputName>,
  selected: boolean,
  problems: InputProblem[]
): StorageTarget['settings'] | undefined {
  const rest = [
    StorageInput.StorageEndpoint,
    StorageInput.StorageRegion,
    StorageInput.StorageAccessKeyId,
    StorageInput.StorageSecretAccessKey,
    StorageInput.StorageSessionToken
  ]
  if (!selected) {
    const stray = rest.find(name => read(name) !== '')
    if (stray)
      problems.push({ input: stray, message: "is set, but 'storage-buckets' is empty: list the buckets, or '*' for every bucket." })
    return undefined
  }
  const endpoint = storageEndpoint(read, problems)
  const region = read(StorageInput.StorageRegion)
  if (region === '') {
    problems.push({
      input: StorageInput.StorageRegion,
      message:
        "is required with 'storage-buckets': the region your project's Storage S3 endpoint signs with, shown under Storage > S3 Configuration (e.g. eu-central-1)."
    })
  } else if (!REGION.test(region)) {
    problems.push({ input: StorageInput.StorageRegion, message: `must be a region name like eu-central-1, got '${clip(region)}'.` })
  }
  const accessKeyId = read(StorageInput.StorageAccessKeyId)
  const secretAccessKey = read(StorageInput.StorageSecretAccessKey)
  for (const [name, value] of [
    [StorageInput.StorageAccessKeyId, accessKeyId],
    [StorageInput.StorageSecretAccessKey, secretAccessKey]
  ] as const) {
    if (value === '') {
      problems.push({
        input: name,
        message:
          "is required with 'storage-buckets': create an S3 access key pair under Storage > S3 Configuration > Access keys in the Supabase dashboard, and pass both halves as secrets."
      })
    }
  }
  const sessionToken = read(StorageInput.StorageSessionToken) || undefined
  if (!endpoint) return undefined
  return { endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey, sessionToken } }
}

/** `storage-endpoint`, else Supabase's own: `<supabase-url>/storage/v1/s3`. */
function storageEndpoint(read: InputReader<StorageInputName>, problems: InputProblem[]): string | undefined {
  const raw = read(StorageInput.StorageEndpoint)
  if (raw !== '') {
    if (isHttpUrl(raw)) return raw.replace(/\/+$/, '')
    problems.push({
      input: StorageInput.StorageEndpoint,
      message: `must be the http(s) URL of the Storage S3 endpoint, such as https://<project>.supabase.co/storage/v1/s3; got '${clip(raw)}'.`
    })
    return undefined
  }
  const project = read('supabase-url')
  if (isHttpUrl(project)) return `${project.replace(/\/+$/, '')}/storage/v1/s3`
  problems.push({
    input: StorageInput.StorageEndpoint,
    message:
      "is required with 'storage-buckets' when 'supabase-url' is not set: the Storage S3 endpoint, https://<project>.supabase.co/storage/v1/s3."
  })
  return undefined
}
