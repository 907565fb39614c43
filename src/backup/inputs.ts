import path from 'node:path'
import { InputError } from '../errors.js'

/** Input names exactly as declared in action.yml. */
export const Input = {
  DispatchId: 'dispatch-id',
  CreateRow: 'create-row',
  Path: 'path',
  IncludeHiddenFiles: 'include-hidden-files',
  Format: 'format',
  CompressionLevel: 'compression-level',
  Bucket: 'bucket',
  Key: 'key',
  Region: 'region',
  Endpoint: 'endpoint',
  ForcePathStyle: 'force-path-style',
  AwsAccessKeyId: 'aws-access-key-id',
  AwsSecretAccessKey: 'aws-secret-access-key',
  AwsSessionToken: 'aws-session-token',
  StorageClass: 'storage-class',
  Sse: 'sse',
  SseKmsKeyId: 'sse-kms-key-id',
  Tags: 'tags',
  Verify: 'verify',
  SupabaseUrl: 'supabase-url',
  SupabaseKey: 'supabase-key',
  Table: 'table',
  BackupApiKey: 'backup-api-key',
  UpdateFunction: 'update-function',
  // The sweep's own inputs (sweep/action.yml).
  MaxAge: 'max-age',
  DryRun: 'dry-run',
  GithubToken: 'github-token',
  Repository: 'repository',
  // The restore's own inputs (restore/action.yml).
  BackupId: 'backup-id',
  S3Key: 's3-key',
  MaxRatio: 'max-ratio',
  MaxSize: 'max-size'
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Reads one input, trimmed; '' when unset (the runner has already applied action.yml defaults). */
export type InputReader = (name: InputName) => string

export const DEFAULT_KEY_TEMPLATE = 'backups/{yyyy}/{mm}/{dd}/backup-{timestamp}.{ext}'

export const ARCHIVE_FORMATS = ['zip', 'tar.gz', 'tar.zst', 'tar'] as const
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number]

/** Compression levels each format accepts, and the default when `compression-level` is empty. */
export const COMPRESSION_LEVELS: Record<ArchiveFormat, { min: number; max: number; default: number } | undefined> = {
  zip: { min: 0, max: 9, default: 6 },
  'tar.gz': { min: 0, max: 9, default: 6 },
  'tar.zst': { min: 1, max: 19, default: 3 },
  tar: undefined
}

/**
 * How the object is checked before the row says success. checksum: size, multipart ETag and the
 * store's CRC32; download: also reads the object back and compares its SHA-256; none: only that it
 * exists with the right size (no checksums are sent, for stores that refuse them).
 */
export const VERIFY_MODES = ['checksum', 'download', 'none'] as const
export type VerifyMode = (typeof VERIFY_MODES)[number]

export const DEFAULT_TABLE = 'backup_history'
export const DEFAULT_UPDATE_FUNCTION = 'update-backup'

/**
 * How the action reaches the rows: the table itself with a key that has table rights, or only
 * the update-backup edge function with its API key (least privilege: CI holds no database key).
 */
export type LedgerAccess = { kind: 'table'; supabaseKey: string } | { kind: 'function'; apiKey: string; functionName: string }

/** What the action needs to find and write the row. Checked first: without these no row can be touched. */
export interface LedgerInputs {
  /** Lower-cased UUID of the row, or undefined when `create-row` makes a new one. */
  dispatchId: string | undefined
  createRow: boolean
  supabaseUrl: string
  access: LedgerAccess
  table: string
}

export interface StoreCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string | undefined
}

/** Where the archives are kept, and how to reach them. */
export type StoreLocation = Pick<BackupInputs, 'bucket' | 'region' | 'endpoint' | 'forcePathStyle' | 'credentials'>

/** What the action needs to build and store the archive. */
export interface BackupInputs {
  /** Pattern lines of `path`; a leading `!` excludes. Relative to the workspace. */
  patterns: string[]
  includeHiddenFiles: boolean
  format: ArchiveFormat
  /** undefined for `tar`, which is not compressed. */
  compressionLevel: number | undefined
  bucket: string
  keyTemplate: string
  /** The default template gets the dispatch id's first 8 hex digits, so parallel runs never collide. */
  keyIsDefault: boolean
  region: string
  endpoint: string | undefined
  forcePathStyle: boolean
  /** undefined: use the SDK's default chain (env, OIDC web identity, instance profile). */
  credentials: StoreCredentials | undefined
  /** How the object is stored: class, server-side encryption, tags. */
  storage: StorageOptions
  verify: VerifyMode
}

export const SSE_MODES = ['AES256', 'aws:kms', 'aws:kms:dsse'] as const
export type SseMode = (typeof SSE_MODES)[number]

export interface StorageOptions {
  storageClass: string | undefined
  sse: SseMode | undefined
  sseKmsKeyId: string | undefined
  /** Object tags, in input order. */
  tags: [string, string][]
}

type Problem = { input: InputName; message: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
// S3's naming rules, plus `_` which R2, MinIO and older S3 buckets allow.
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/
const REGION = /^[a-z]{2}(-[a-z0-9]+)+$|^auto$/
const FUNCTION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/
// S3's storage classes are upper-case words; other stores add their own (MinIO, R2), so only the shape is checked.
const STORAGE_CLASS = /^[A-Z][A-Z0-9_]{1,31}$/
const KMS_KEY_ID = /^[\x21-\x7e]{1,2048}$/
// S3's object tag limits; the characters are those S3 documents as allowed in tags.
const MAX_TAGS = 10
const TAG_TEXT = /^[\p{L}\p{N}\s+\-=._:/@]*$/u
/** Longest file or directory name Linux, macOS and Windows file systems allow. */
const MAX_NAME_BYTES = 255
const KEY_PLACEHOLDERS = new Set(['yyyy', 'mm', 'dd', 'timestamp', 'ext', 'dispatch_id', 'run_id', 'run_attempt', 'repo'])

export function isUuid(value: string): boolean {
  return UUID.test(value)
}

/** Inputs that identify and reach the row. Throws InputError naming every bad input. */
export function parseLedgerInputs(read: InputReader): LedgerInputs {
  const problems: Problem[] = []
  const createRow = parseBoolean(read, Input.CreateRow, problems)
  const rawDispatchId = read(Input.DispatchId)
  let dispatchId: string | undefined
  if (rawDispatchId === '') {
    if (!createRow) {
      problems.push({
        input: Input.DispatchId,
        message:
          "is required: pass the UUID of the backup_history row to finalize (for example `${{ inputs.dispatch_id }}`), or set 'create-row: true' for scheduled runs. The action never falls back to the run id."
      })
    }
  } else if (!isUuid(rawDispatchId)) {
    problems.push({
      input: Input.DispatchId,
      message: `must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got '${clip(rawDispatchId)}'.`
    })
  } else {
    dispatchId = rawDispatchId.toLowerCase()
  }

  const { supabaseUrl, table } = parseSupabaseTarget(read, problems)
  const access = parseLedgerAccess(read, table, problems)
  if (problems.length > 0 || !access) throw new InputError(problems)
  return { dispatchId, createRow, supabaseUrl, access, table }
}

/** supabase-url and table: where the rows live, for the action and the sweep. */
function parseSupabaseTarget(read: InputReader, problems: Problem[]): { supabaseUrl: string; table: string } {
  const supabaseUrl = read(Input.SupabaseUrl)
  if (supabaseUrl === '') {
    problems.push({ input: Input.SupabaseUrl, message: 'is required: the project URL, e.g. https://abcd.supabase.co.' })
  } else if (!isHttpUrl(supabaseUrl)) {
    problems.push({
      input: Input.SupabaseUrl,
      message: `must be an http(s) URL such as https://abcd.supabase.co, got '${clip(supabaseUrl)}'.`
    })
  }
  const table = read(Input.Table) || DEFAULT_TABLE
  if (!TABLE_NAME.test(table)) {
    problems.push({ input: Input.Table, message: `must be a plain table name like backup_history, got '${clip(table)}'.` })
  }
  return { supabaseUrl: supabaseUrl.replace(/\/+$/, ''), table }
}
/** `supabase-key` (table rights) or `backup-api-key` (the update-backup function), never both. */
function parseLedgerAccess(read: InputReader, table: string, problems: Problem[]): LedgerAccess | undefined {
  const supabaseKey = read(Input.SupabaseKey)
  const apiKey = read(Input.BackupApiKey)
  const functionName = read(Input.UpdateFunction) || DEFAULT_UPDATE_FUNCTION
  if (apiKey === '') {
    if (functionName !== DEFAULT_UPDATE_FUNCTION) {
      problems.push({ input: Input.UpdateFunction, message: "only applies with 'backup-api-key'; set that too, or remove this input." })
    }
    if (supabaseKey === '') {
      problems.push({
        input: Input.SupabaseKey,
        message:
          "is required: a key whose role may read and update the table (the service role key, stored as a secret). Or set 'backup-api-key' instead, to report through the update-backup edge function with no database key in CI."
      })
      return undefined
    }
    return { kind: 'table', supabaseKey }
  }
  // Holding both would defeat the point of the function: CI keeping no key with table rights.
  if (supabaseKey !== '') {
    problems.push({
      input: Input.SupabaseKey,
      message:
        "must be empty when 'backup-api-key' is set: the action then reaches the table only through the update-backup function, so the workflow needs no key with table rights. Remove 'supabase-key' from the step."
    })
  }
  if (table !== DEFAULT_TABLE) {
    problems.push({
      input: Input.Table,
      message: "does not apply with 'backup-api-key': the function's BACKUP_TABLE secret names the table. Remove 'table' from the step."
    })
  }
  if (!FUNCTION_NAME.test(functionName)) {
    problems.push({
      input: Input.UpdateFunction,
      message: `must be the name of the deployed edge function, like update-backup; got '${clip(functionName)}'.`
    })
  }
  return { kind: 'function', apiKey, functionName }
}

/** Inputs for the archive and the store. Throws InputError naming every bad input. */
export function parseBackupInputs(read: InputReader, env: NodeJS.ProcessEnv = process.env): BackupInputs {
  const problems: Problem[] = []

  const patterns = read(Input.Path)
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
  if (patterns.length === 0) {
    problems.push({ input: Input.Path, message: 'is required: list files, directories or globs relative to the workspace, one per line.' })
  }
  for (const pattern of patterns) {
    const problem = patternProblem(pattern)
    if (problem) problems.push({ input: Input.Path, message: problem })
  }
  const includeHiddenFiles = parseBoolean(read, Input.IncludeHiddenFiles, problems)

  const rawFormat = read(Input.Format) || 'zip'
  const format = ARCHIVE_FORMATS.find(f => f === rawFormat.toLowerCase())
  if (!format) {
    problems.push({ input: Input.Format, message: `must be one of ${ARCHIVE_FORMATS.join(', ')}, got '${clip(rawFormat)}'.` })
  }
  const compressionLevel = format ? parseCompressionLevel(read(Input.CompressionLevel), format, problems) : undefined

  const { bucket, region, endpoint, forcePathStyle, credentials } = parseStoreLocation(read, env, problems)
  const keyTemplate = read(Input.Key) || DEFAULT_KEY_TEMPLATE
  const keyProblem = keyTemplateProblem(keyTemplate)
  if (keyProblem) problems.push({ input: Input.Key, message: keyProblem })

  const storage = parseStorageOptions(read, problems)
  const rawVerify = read(Input.Verify) || 'checksum'
  const verify = VERIFY_MODES.find(mode => mode === rawVerify.toLowerCase())
  if (!verify) {
    problems.push({ input: Input.Verify, message: `must be one of ${VERIFY_MODES.join(', ')}, got '${clip(rawVerify)}'.` })
  }

  if (problems.length > 0 || !format || !verify) throw new InputError(problems)
  return {
    patterns,
    includeHiddenFiles,
    format,
    compressionLevel,
    bucket,
    keyTemplate,
    keyIsDefault: keyTemplate === DEFAULT_KEY_TEMPLATE,
    region,
    endpoint,
    forcePathStyle,
    credentials,
    storage,
    verify
  }
}

/** What the sweep needs: where the rows live, how old is too old, and how to ask GitHub about runs. */
export interface SweepInputs {
  supabaseUrl: string
  /** The sweep lists and writes the table directly: it needs table rights, not the update-backup function. */
  supabaseKey: string
  table: string
  /** Rows no known-running run holds are failed once they are older than this. */
  maxAgeMs: number
  /** Report what would change, write nothing. */
  dryRun: boolean
  /** '' when none: runs cannot be checked, only max-age applies. */
  githubToken: string
  /** `owner/name` whose workflow runs the rows' workflow_run_id refer to. */
  repository: { owner: string; repo: string }
}

const DURATION_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const REPOSITORY = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/

/** `90m`, `6h`, `2d`, `1h30m` in milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+[smhd])+$/i.test(text)) return undefined
  let ms = 0
  for (const [, amount, unit] of text.toLowerCase().matchAll(/(\d+)([smhd])/g)) ms += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? 0)
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined
}

/** The sweep's inputs. Throws InputError naming every bad input. */
export function parseSweepInputs(read: InputReader, env: NodeJS.ProcessEnv = process.env): SweepInputs {
  const problems: Problem[] = []
  const target = parseSupabaseTarget(read, problems)
  const supabaseKey = read(Input.SupabaseKey)
  if (supabaseKey === '') {
    problems.push({
      input: Input.SupabaseKey,
      message: 'is required: a key whose role may read and update the table (the service role key, stored as a secret).'
    })
  }
  const rawMaxAge = read(Input.MaxAge) || '6h'
  const maxAgeMs = parseDuration(rawMaxAge)
  if (maxAgeMs === undefined) {
    problems.push({ input: Input.MaxAge, message: `must be a duration such as 90m, 6h or 2d, got '${clip(rawMaxAge)}'.` })
  }
  const dryRun = parseBoolean(read, Input.DryRun, problems)
  const rawRepository = read(Input.Repository) || env.GITHUB_REPOSITORY || ''
  const repository = REPOSITORY.exec(rawRepository)
  if (!repository) {
    problems.push({
      input: Input.Repository,
      message: `must be owner/name, the repository whose runs back up the rows; got '${clip(rawRepository)}'.`
    })
  }
  if (problems.length > 0 || maxAgeMs === undefined || !repository) throw new InputError(problems)
  return {
    ...target,
    supabaseKey,
    maxAgeMs,
    dryRun,
    githubToken: read(Input.GithubToken),
    repository: { owner: repository[1] ?? '', repo: repository[2] ?? '' }
  }
}

/** Where the archives are: bucket, region, endpoint, addressing and credentials, for backup and restore alike. */
function parseStoreLocation(read: InputReader, env: NodeJS.ProcessEnv, problems: Problem[]): StoreLocation {
  const bucket = read(Input.Bucket)
  if (bucket === '') {
    problems.push({ input: Input.Bucket, message: 'is required: the name of the bucket that holds the archives.' })
  } else if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
    problems.push({
      input: Input.Bucket,
      message: `must be a bucket name (3-63 lowercase letters, digits, '.', '-'), not a URL or path; got '${clip(bucket)}'.`
    })
  }

  const region = read(Input.Region) || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!REGION.test(region)) {
    problems.push({ input: Input.Region, message: `must be a region name like eu-west-1 (or 'auto' for R2), got '${clip(region)}'.` })
  }

  const rawEndpoint = read(Input.Endpoint)
  let endpoint: string | undefined
  if (rawEndpoint !== '') {
    if (isHttpUrl(rawEndpoint)) endpoint = rawEndpoint.replace(/\/+$/, '')
    else {
      problems.push({
        input: Input.Endpoint,
        message: `must be the http(s) URL of an S3-compatible store, such as https://<account>.r2.cloudflarestorage.com; got '${clip(rawEndpoint)}'.`
      })
    }
  }
  const forcePathStyle = parseBoolean(read, Input.ForcePathStyle, problems)
  const credentials = parseCredentials(read, problems)
  return { bucket, region, endpoint, forcePathStyle, credentials }
}

/** Which backup to restore: exactly one of these identifies it. */
export type RestoreTarget = { kind: 'backup-id'; id: string } | { kind: 'dispatch-id'; id: string } | { kind: 's3-key'; key: string }

/** What the restore sub-action needs. */
export interface RestoreInputs {
  target: RestoreTarget
  /** Absolute path of the directory to restore into; it must not exist yet, or be empty. */
  destination: string
  store: StoreLocation
  /** Where the row is read; undefined only for `s3-key` without Supabase inputs (no row is checked). */
  ledger: { supabaseUrl: string; table: string; access: LedgerAccess } | undefined
  limits: { maxRatio: number; maxBytes: number | undefined }
}

export const DEFAULT_MAX_RATIO = 1000
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

/** `500MiB`, `10 GB`, `2T`, `1048576` in bytes (binary units); undefined when it is not such a size. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim())
  if (!match) return undefined
  const bytes = Math.floor(Number(match[1]) * (BYTE_UNITS[(match[2] ?? '').toLowerCase()] ?? NaN))
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}

/** The restore's inputs. Throws InputError naming every bad input. */
export function parseRestoreInputs(read: InputReader, workspace: string, env: NodeJS.ProcessEnv = process.env): RestoreInputs {
  const problems: Problem[] = []
  const given = ([Input.BackupId, Input.DispatchId, Input.S3Key] as const).filter(name => read(name) !== '')
  let target: RestoreTarget | undefined
  if (given.length !== 1) {
    problems.push({
      input: given[1] ?? Input.BackupId,
      message: `${given.length === 0 ? 'is required' : `cannot be combined with '${given[0]}'`}: set exactly one of 'backup-id' (the row's id), 'dispatch-id' (the row's dispatch_id) or 's3-key' (the object's key).`
    })
  } else if (given[0] === Input.S3Key) {
    const key = read(Input.S3Key)
    if (key.startsWith('/') || /[\u0000-\u001f\u007f]/.test(key)) {
      problems.push({
        input: Input.S3Key,
        message: `must be an object key relative to the bucket, such as backups/2024/05/01/backup.zip; got '${clip(key)}'.`
      })
    }
    target = { kind: 's3-key', key }
  } else if (given[0]) {
    const id = read(given[0])
    if (!isUuid(id))
      problems.push({ input: given[0], message: `must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got '${clip(id)}'.` })
    target = { kind: given[0], id: id.toLowerCase() }
  }

  const rawPath = read(Input.Path)
  if (rawPath === '' || rawPath.includes('\n')) {
    problems.push({
      input: Input.Path,
      message: 'is required: one directory to restore into (relative to the workspace, or absolute); it must not exist yet, or be empty.'
    })
  }
  const destination = path.resolve(workspace, rawPath)
  if (rawPath !== '' && destination === path.parse(destination).root) {
    problems.push({ input: Input.Path, message: `is the root directory; restore into a directory of its own.` })
  }

  const store = parseStoreLocation(read, env, problems)
  const ledger = parseRestoreLedger(read, target, problems)

  const rawRatio = read(Input.MaxRatio) || String(DEFAULT_MAX_RATIO)
  const maxRatio = /^\d+(\.\d+)?$/.test(rawRatio) ? Number(rawRatio) : NaN
  if (!(maxRatio >= 1)) {
    problems.push({
      input: Input.MaxRatio,
      message: `must be a number of at least 1 (how many times its own size an archive may expand to), got '${clip(rawRatio)}'.`
    })
  }
  const rawMaxSize = read(Input.MaxSize)
  const maxBytes = rawMaxSize === '' ? undefined : parseByteSize(rawMaxSize)
  if (rawMaxSize !== '' && maxBytes === undefined) {
    problems.push({ input: Input.MaxSize, message: `must be a size such as 500MiB, 20GiB or 1TiB, got '${clip(rawMaxSize)}'.` })
  }

  if (problems.length > 0 || !target) throw new InputError(problems)
  return { target, destination, store, ledger, limits: { maxRatio, maxBytes } }
}

/**
 * The row is read with `supabase-key`, or with `backup-api-key` through the update-backup
 * function's lookup (by id or dispatch id; it cannot search by key). With `s3-key` the Supabase
 * inputs are optional: without them the object is restored with no row to check, for when the
 * database itself is what was lost.
 */
function parseRestoreLedger(read: InputReader, target: RestoreTarget | undefined, problems: Problem[]): RestoreInputs['ledger'] {
  const bySupabase = [Input.SupabaseUrl, Input.SupabaseKey, Input.BackupApiKey].some(name => read(name) !== '')
  if (target?.kind === 's3-key' && !bySupabase) return undefined
  const { supabaseUrl, table } = parseSupabaseTarget(read, problems)
  const access = parseLedgerAccess(read, table, problems)
  if (target?.kind === 's3-key' && access?.kind === 'function') {
    problems.push({
      input: Input.BackupApiKey,
      message:
        "cannot look a row up by 's3-key' (the update-backup function finds rows by id only): use 'backup-id' or 'dispatch-id', or 'supabase-key', or leave the Supabase inputs out to restore the object without its row."
    })
  }
  return access ? { supabaseUrl, table, access } : undefined
}

function parseBoolean(read: InputReader, input: InputName, problems: Problem[]): boolean {
  const raw = read(input)
  if (raw === '' || /^false$/i.test(raw)) return false
  if (/^true$/i.test(raw)) return true
  problems.push({ input, message: `must be true or false, got '${clip(raw)}'.` })
  return false
}

function parseCompressionLevel(raw: string, format: ArchiveFormat, problems: Problem[]): number | undefined {
  const range = COMPRESSION_LEVELS[format]
  if (!range) {
    if (raw !== '')
      problems.push({ input: Input.CompressionLevel, message: `does not apply to format 'tar', which is not compressed; remove it.` })
    return undefined
  }
  if (raw === '') return range.default
  const level = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isInteger(level) || level < range.min || level > range.max) {
    problems.push({
      input: Input.CompressionLevel,
      message: `must be a whole number from ${range.min} to ${range.max} for format '${format}', got '${clip(raw)}'.`
    })
    return undefined
  }
  return level
}

function parseCredentials(read: InputReader, problems: Problem[]): StoreCredentials | undefined {
  const accessKeyId = read(Input.AwsAccessKeyId)
  const secretAccessKey = read(Input.AwsSecretAccessKey)
  const sessionToken = read(Input.AwsSessionToken) || undefined
  if (accessKeyId === '' && secretAccessKey === '') {
    if (sessionToken) {
      problems.push({ input: Input.AwsSessionToken, message: "needs 'aws-access-key-id' and 'aws-secret-access-key' as well." })
    }
    return undefined
  }
  if (accessKeyId === '') {
    problems.push({ input: Input.AwsAccessKeyId, message: "is required when 'aws-secret-access-key' is set." })
  }
  if (secretAccessKey === '') {
    problems.push({ input: Input.AwsSecretAccessKey, message: "is required when 'aws-access-key-id' is set." })
  }
  return { accessKeyId, secretAccessKey, sessionToken }
}

function parseStorageOptions(read: InputReader, problems: Problem[]): StorageOptions {
  const storageClass = read(Input.StorageClass) || undefined
  if (storageClass && !STORAGE_CLASS.test(storageClass)) {
    problems.push({
      input: Input.StorageClass,
      message: `must be a storage class name like STANDARD_IA, GLACIER_IR or DEEP_ARCHIVE (upper case), got '${clip(storageClass)}'.`
    })
  }
  const rawSse = read(Input.Sse)
  const sse = SSE_MODES.find(mode => mode.toLowerCase() === rawSse.toLowerCase())
  if (rawSse !== '' && !sse) {
    problems.push({
      input: Input.Sse,
      message: `must be one of ${SSE_MODES.join(', ')} (or empty for the bucket's default), got '${clip(rawSse)}'.`
    })
  }
  const sseKmsKeyId = read(Input.SseKmsKeyId) || undefined
  if (sseKmsKeyId && !sse?.startsWith('aws:kms')) {
    problems.push({ input: Input.SseKmsKeyId, message: "needs 'sse: aws:kms' (or aws:kms:dsse); without it the key would be ignored." })
  } else if (sseKmsKeyId && !KMS_KEY_ID.test(sseKmsKeyId)) {
    problems.push({ input: Input.SseKmsKeyId, message: 'must be a KMS key id, key ARN or alias (no spaces).' })
  }
  return { storageClass, sse, sseKmsKeyId, tags: parseTags(read(Input.Tags), problems) }
}

/** `tags`: one `key=value` per line, within S3's limits (10 tags, keys 1-128 and values 0-256 characters). */
function parseTags(raw: string, problems: Problem[]): [string, string][] {
  const tags: [string, string][] = []
  const lines = raw
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
  for (const line of lines) {
    const equals = line.indexOf('=')
    const key = (equals < 0 ? line : line.slice(0, equals)).trim()
    const value = equals < 0 ? '' : line.slice(equals + 1).trim()
    let problem: string | undefined
    if (equals < 0 || key === '') problem = `has a line '${clip(line)}' that is not key=value.`
    else if ([...key].length > 128 || [...value].length > 256)
      problem = `'${clip(key)}' is too long: keys are at most 128 characters, values 256.`
    else if (!TAG_TEXT.test(key) || !TAG_TEXT.test(value)) {
      problem = `'${clip(line)}' has characters S3 does not allow in tags; use letters, digits, spaces and + - = . _ : / @.`
    } else if (/^aws:/i.test(key)) problem = `'${clip(key)}' uses the reserved aws: prefix.`
    else if (tags.some(([existing]) => existing === key)) problem = `has the key '${clip(key)}' twice.`
    if (problem) problems.push({ input: Input.Tags, message: problem })
    else tags.push([key, value])
  }
  if (lines.length > MAX_TAGS)
    problems.push({ input: Input.Tags, message: `has ${lines.length} tags; S3 allows at most ${MAX_TAGS} per object.` })
  return tags
}

/** Why a `path` line is refused, or undefined when it is fine. */
function patternProblem(line: string): string | undefined {
  const pattern = line.startsWith('!') ? line.slice(1).trim() : line
  if (pattern === '') return `has a line '${clip(line)}' with nothing to match.`
  if (path.isAbsolute(pattern) || pattern.startsWith('~')) {
    return `'${clip(line)}' is absolute; paths are relative to the workspace (checkout) directory.`
  }
  const segments = pattern.split(/[\\/]+/)
  if (segments.includes('..')) {
    return `'${clip(line)}' leaves the workspace through '..'; only paths inside the workspace can be backed up.`
  }
  // No file system has such names: say so rather than fail later with ENAMETOOLONG.
  if (segments.some(segment => Buffer.byteLength(segment) > MAX_NAME_BYTES)) {
    return `'${clip(line)}' has a name longer than ${MAX_NAME_BYTES} bytes, which no file can have; check the value passed to 'path'.`
  }
  return undefined
}

/** Why a `key` template is refused, or undefined when it is fine. */
export function keyTemplateProblem(template: string): string | undefined {
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    const name = match[1] ?? ''
    if (!KEY_PLACEHOLDERS.has(name)) {
      return `has an unknown placeholder {${clip(name)}}; use ${[...KEY_PLACEHOLDERS].map(p => `{${p}}`).join(', ')}.`
    }
  }
  if (/[{}]/.test(template.replace(/\{[a-z_]+\}/g, ''))) return 'has an unmatched { or }.'
  if (template.startsWith('/')) return "must not start with '/': S3 keys are relative to the bucket."
  if (template.endsWith('/')) return "must name an object, not end with '/'."
  // Control characters and backslashes break S3 listings and most tools that consume keys.
  if (/[\u0000-\u001f\u007f\\]/.test(template)) return 'must not contain control characters or backslashes.'
  if (template.split('/').some(segment => segment === '.' || segment === '..' || segment === '')) {
    return "must not contain empty, '.' or '..' path segments."
  }
  if (Buffer.byteLength(template) > 900) return 'is too long: S3 keys are at most 1024 bytes.'
  return undefined
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== ''
  } catch {
    return false
  }
}

/** Keeps echoed values short in messages. */
function clip(value: string): string {
  const oneLine = value.replace(/[\r\n]+/g, ' ')
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine
}
