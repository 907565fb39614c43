import path from 'node:path'
import { ARCHIVE_FORMATS, COMPRESSION_LEVELS, type ArchiveFormat } from '../archive/formats.js'
import { InputError } from '../errors.js'
import { LedgerInput, LEDGER_SECRET_INPUTS } from '../ledger/inputs.js'
import { clip, inputLines, parseBoolean, type InputProblem, type InputReader } from '../runner/inputs.js'
import { parseStoreLocation, StoreInput, STORE_SECRET_INPUTS, type StoreLocation } from '../store/inputs.js'
import { SSE_MODES, type StorageOptions } from '../store/upload.js'
import { VERIFY_MODES, type VerifyMode } from '../store/verify.js'
import { databaseUrlSecrets, DatabaseUrlError, parseDatabaseUrl, TRANSACTION_POOLER_PORT, type DatabaseUrl } from '../postgres/url.js'
import { parseStorageTarget, StorageInput, STORAGE_SECRET_INPUTS, type StorageTarget } from '../sources/storage/inputs.js'
import { DEFAULT_KEY_TEMPLATE, keyTemplateProblem } from './key.js'
import { parseRecipient, type Sealing, type X25519Recipient } from '../crypto/keys.js'

/** The backup action's inputs (action.yml): the row's, the store's, and what to archive and how. */
export const Input = {
  ...LedgerInput,
  ...StoreInput,
  ...StorageInput,
  Path: 'path',
  IncludeHiddenFiles: 'include-hidden-files',
  Format: 'format',
  CompressionLevel: 'compression-level',
  Key: 'key',
  StorageClass: 'storage-class',
  Sse: 'sse',
  SseKmsKeyId: 'sse-kms-key-id',
  Tags: 'tags',
  Verify: 'verify',
  DatabaseUrl: 'database-url',
  EncryptTo: 'encrypt-to',
  EncryptPassphrase: 'encrypt-passphrase'
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Every secret the inputs hold, valid or not, to mask before anything is printed: the database URL's password on its own too. */
export function secretValues(read: InputReader<InputName>): string[] {
  return [
    ...[...LEDGER_SECRET_INPUTS, ...STORE_SECRET_INPUTS, ...STORAGE_SECRET_INPUTS].map(name => read(name)),
    ...databaseUrlSecrets(read(Input.DatabaseUrl)),
    read(Input.EncryptPassphrase)
  ]
}

/** What the action needs to build and store the archive. */
export interface BackupInputs extends StoreLocation {
  /** Pattern lines of `path`; a leading `!` excludes. Relative to the workspace. Empty when only the database is backed up. */
  patterns: string[]
  /** `database-url`: the database to dump into the archive's database/ folder. */
  database: DatabaseUrl | undefined
  /** `storage-buckets` and the Storage endpoint: the buckets to archive under storage/. */
  storageSource: StorageTarget | undefined
  includeHiddenFiles: boolean
  format: ArchiveFormat
  /** undefined for `tar`, which is not compressed. */
  compressionLevel: number | undefined
  keyTemplate: string
  /** The default template gets the dispatch id's first 8 hex digits, so parallel runs never collide. */
  keyIsDefault: boolean
  /** How the object is stored: class, server-side encryption, tags. */
  storage: StorageOptions
  verify: VerifyMode
  /** `encrypt-to` or `encrypt-passphrase`: the archive is encrypted to an age file as it streams. */
  encryption: Sealing | undefined
}

// S3's storage classes are upper-case words; other stores add their own (MinIO, R2), so only the shape is checked.
const STORAGE_CLASS = /^[A-Z][A-Z0-9_]{1,31}$/
const KMS_KEY_ID = /^[\x21-\x7e]{1,2048}$/
// S3's object tag limits; the characters are those S3 documents as allowed in tags.
const MAX_TAGS = 10
const TAG_TEXT = /^[\p{L}\p{N}\s+\-=._:/@]*$/u
/** Shorter passphrases fall to a guess: scrypt slows each one down, it cannot make a short one long. */
const MIN_PASSPHRASE_LENGTH = 12
/** Longest file or directory name Linux, macOS and Windows file systems allow. */
const MAX_NAME_BYTES = 255

/** Inputs for the archive and the store. Throws InputError naming every bad input. */
export function parseBackupInputs(read: InputReader<InputName>, env: NodeJS.ProcessEnv = process.env): BackupInputs {
  const problems: InputProblem[] = []

  const patterns = inputLines(read(Input.Path))
  const database = parseDatabase(read(Input.DatabaseUrl), problems)
  const storageTarget = parseStorageTarget(read, problems)
  if (patterns.length === 0 && read(Input.DatabaseUrl) === '' && read(Input.StorageBuckets) === '') {
    problems.push({
      input: Input.Path,
      message:
        "is required: list files, directories or globs relative to the workspace, one per line; or set 'database-url' to back up the database, or 'storage-buckets' to back up Storage (then 'path' is optional)."
    })
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

  const encryption = parseEncryption(read, problems)

  if (problems.length > 0 || !format || !verify) throw new InputError(problems)
  return {
    patterns,
    database,
    storageSource: storageTarget,
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
    verify,
    encryption
  }
}

/** `encrypt-to` (age recipients, one per line) or `encrypt-passphrase`: age allows one or the other in a file, never both. */
function parseEncryption(read: InputReader<InputName>, problems: InputProblem[]): Sealing | undefined {
  const lines = inputLines(read(Input.EncryptTo))
  const passphrase = read(Input.EncryptPassphrase)
  if (lines.length > 0 && passphrase !== '') {
    problems.push({
      input: Input.EncryptPassphrase,
      message: `cannot be combined with '${Input.EncryptTo}': an age file is encrypted to recipients or to one passphrase. Keep 'encrypt-to' (the stronger choice) and remove 'encrypt-passphrase'.`
    })
    return undefined
  }
  if (passphrase !== '') {
    if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
      problems.push({
        input: Input.EncryptPassphrase,
        message: `is ${passphrase.length} characters long; use at least ${MIN_PASSPHRASE_LENGTH} (a random one from a password manager), or better, 'encrypt-to' with an age recipient.`
      })
      return undefined
    }
    return { kind: 'passphrase', passphrase }
  }
  if (lines.length === 0) return undefined
  const recipients: X25519Recipient[] = []
  for (const line of lines) {
    const recipient = parseRecipient(line)
    if (typeof recipient === 'string') problems.push({ input: Input.EncryptTo, message: recipient })
    else if (!recipients.some(known => known.publicKey.equals(recipient.publicKey))) recipients.push(recipient)
  }
  return { kind: 'recipients', recipients }
}

/** `database-url`: a Postgres connection string pg_dump can use (not the transaction pooler, which cannot hold a snapshot). */
function parseDatabase(raw: string, problems: InputProblem[]): DatabaseUrl | undefined {
  if (raw === '') return undefined
  let database: DatabaseUrl
  try {
    database = parseDatabaseUrl(raw)
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error
    problems.push({ input: Input.DatabaseUrl, message: error.message })
    return undefined
  }
  if (database.supabase === 'transaction-pooler') {
    problems.push({
      input: Input.DatabaseUrl,
      message: `points at Supabase's pooler in transaction mode (port ${TRANSACTION_POOLER_PORT}), which hands each transaction to another connection: pg_dump's snapshot cannot be kept there. Use the Session pooler connection string (the same host, port 5432): Connect (top of the project dashboard) > Session pooler.`
    })
  }
  return database
}

function parseCompressionLevel(raw: string, format: ArchiveFormat, problems: InputProblem[]): number | undefined {
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

function parseStorageOptions(read: InputReader<InputName>, problems: InputProblem[]): StorageOptions {
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
function parseTags(raw: string, problems: InputProblem[]): [string, string][] {
  const tags: [string, string][] = []
  const lines = inputLines(raw)
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
