import path from 'node:path'
import { identitySecrets, parseIdentities, type Opening } from '../crypto/keys.js'
import { InputError } from '../errors.js'
import { LedgerInput, LEDGER_SECRET_INPUTS, parseLedgerAccess, parseSupabaseTarget, type LedgerTarget } from '../ledger/inputs.js'
import { databaseUrlSecrets, DatabaseUrlError, parseDatabaseUrl, TRANSACTION_POOLER_PORT, type DatabaseUrl } from '../postgres/url.js'
import { clip, isUuid, parseBoolean, parseByteSize, type InputProblem, type InputReader } from '../runner/inputs.js'
import { parseStoreLocation, StoreInput, STORE_SECRET_INPUTS, type StoreLocation } from '../store/inputs.js'
import {
  bucketLines,
  isBucketName,
  parseStorageConnection,
  StorageInput,
  STORAGE_SECRET_INPUTS,
  type StorageTarget
} from '../sources/storage/inputs.js'

/** The restore's inputs (restore/action.yml). */
export const Input = {
  ...StoreInput,
  SupabaseUrl: LedgerInput.SupabaseUrl,
  SupabaseKey: LedgerInput.SupabaseKey,
  Table: LedgerInput.Table,
  BackupApiKey: LedgerInput.BackupApiKey,
  UpdateFunction: LedgerInput.UpdateFunction,
  BackupId: 'backup-id',
  DispatchId: LedgerInput.DispatchId,
  S3Key: 's3-key',
  Path: 'path',
  MaxRatio: 'max-ratio',
  MaxSize: 'max-size',
  DatabaseUrl: 'database-url',
  AllowNonEmptyDatabase: 'allow-non-empty-database',
  ...StorageInput,
  AllowOverwriteStorage: 'allow-overwrite-storage',
  DecryptIdentity: 'decrypt-identity',
  DecryptPassphrase: 'decrypt-passphrase'
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Every secret the inputs hold, valid or not, to mask before anything is printed: the database URL's password on its own too. */
export function secretValues(read: InputReader<InputName>): string[] {
  return [
    ...[...LEDGER_SECRET_INPUTS, ...STORE_SECRET_INPUTS, ...STORAGE_SECRET_INPUTS].map(name => read(name)),
    ...databaseUrlSecrets(read(Input.DatabaseUrl)),
    ...identitySecrets(read(Input.DecryptIdentity)),
    read(Input.DecryptPassphrase)
  ]
}

/** Which backup to restore: exactly one of these identifies it. */
export type RestoreTarget = { kind: 'backup-id'; id: string } | { kind: 'dispatch-id'; id: string } | { kind: 's3-key'; key: string }

/** What the restore sub-action needs. */
export interface RestoreInputs {
  target: RestoreTarget
  /** Absolute path of the directory to restore the files into; it must not exist yet, or be empty. Undefined: files are checked, not written. */
  destination: string | undefined
  /** The database to apply the archive's database/ part to. */
  database: { url: DatabaseUrl; allowNonEmpty: boolean } | undefined
  /** Where the archive's storage/ part goes; undefined: it is extracted with the files, like any folder. */
  storage: StorageRestoreTarget | undefined
  store: StoreLocation
  /** Where the row is read; undefined only for `s3-key` without Supabase inputs (no row is checked). */
  ledger: LedgerTarget | undefined
  limits: { maxRatio: number; maxBytes: number | undefined }
  /** `decrypt-identity` and `decrypt-passphrase`: undefined when neither is set (an encrypted object is then refused). */
  decryption: Opening | undefined
}

/** Which archived buckets go into which of the project's buckets. */
export type BucketMapping = { all: true } | { all: false; pairs: { from: string; to: string }[] }

export interface StorageRestoreTarget {
  buckets: BucketMapping
  settings: StorageTarget['settings']
  /** Objects at keys that already exist are replaced; otherwise any such key refuses the restore before anything is written. */
  allowOverwrite: boolean
}

export const DEFAULT_MAX_RATIO = 1000

/** The restore's inputs. Throws InputError naming every bad input. */
export function parseRestoreInputs(read: InputReader<InputName>, workspace: string, env: NodeJS.ProcessEnv = process.env): RestoreInputs {
  const problems: InputProblem[] = []
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

  const database = parseDatabase(read, problems)
  const storage = parseStorageRestore(read, problems)
  const rawPath = read(Input.Path)
  if ((rawPath === '' && read(Input.DatabaseUrl) === '' && read(Input.StorageBuckets) === '') || rawPath.includes('\n')) {
    problems.push({
      input: Input.Path,
      message:
        "is required: one directory to restore into (relative to the workspace, or absolute); it must not exist yet, or be empty. (With 'database-url' or 'storage-buckets' alone, only the database or Storage is restored.)"
    })
  }
  const destination = rawPath === '' ? undefined : path.resolve(workspace, rawPath)
  if (destination !== undefined && destination === path.parse(destination).root) {
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

  const decryption = parseDecryption(read, problems)

  if (problems.length > 0 || !target) throw new InputError(problems)
  return { target, destination, database, storage, store, ledger, limits: { maxRatio, maxBytes }, decryption }
}

/** `decrypt-identity` (the text of an age key file: its identities) and `decrypt-passphrase`. */
function parseDecryption(read: InputReader<InputName>, problems: InputProblem[]): Opening | undefined {
  const identityText = read(Input.DecryptIdentity)
  const passphrase = read(Input.DecryptPassphrase) || undefined
  if (identityText === '' && passphrase === undefined) return undefined
  const identities = identityText === '' ? [] : parseIdentities(identityText)
  if (typeof identities === 'string') {
    problems.push({ input: Input.DecryptIdentity, message: identities })
    return undefined
  }
  return { identities, passphrase }
}

/** `storage-buckets` (`*`, or a line per bucket: `name` or `archived=target`), the Storage endpoint, and `allow-overwrite-storage`. */
function parseStorageRestore(read: InputReader<InputName>, problems: InputProblem[]): StorageRestoreTarget | undefined {
  const allowOverwrite = parseBoolean(read, Input.AllowOverwriteStorage, problems)
  const buckets = parseBucketMapping(read(Input.StorageBuckets), problems)
  const settings = parseStorageConnection(read, buckets !== undefined, problems)
  return buckets && settings ? { buckets, settings, allowOverwrite } : undefined
}

/** The restore's `storage-buckets`: undefined when empty. */
export function parseBucketMapping(raw: string, problems: InputProblem[]): BucketMapping | undefined {
  const input = Input.StorageBuckets
  const lines = bucketLines(raw, problems)
  if (lines === undefined || lines === '*') return lines && { all: true }
  const pairs: { from: string; to: string }[] = []
  for (const line of lines) {
    const [from = '', to = from, ...extra] = line.split('=').map(part => part.trim())
    if (extra.length > 0 || !isBucketName(from) || !isBucketName(to)) {
      problems.push({
        input,
        message: `has '${clip(line)}': each line is a bucket name, or archived-name=target-name to restore a bucket into another one.`
      })
    } else if (pairs.some(pair => pair.from === from)) problems.push({ input, message: `names the archived bucket '${clip(from)}' twice.` })
    else if (pairs.some(pair => pair.to === to)) problems.push({ input, message: `restores two buckets into '${clip(to)}'.` })
    else pairs.push({ from, to })
  }
  return { all: false, pairs }
}

/** `database-url` (a connection pg_dump's output can be applied through: not the transaction pooler) and `allow-non-empty-database`. */
function parseDatabase(read: InputReader<InputName>, problems: InputProblem[]): RestoreInputs['database'] {
  const allowNonEmpty = parseBoolean(read, Input.AllowNonEmptyDatabase, problems)
  const raw = read(Input.DatabaseUrl)
  if (raw === '') return undefined
  try {
    const url = parseDatabaseUrl(raw)
    if (url.supabase === 'transaction-pooler') {
      problems.push({
        input: Input.DatabaseUrl,
        message: `points at Supabase's pooler in transaction mode (port ${TRANSACTION_POOLER_PORT}), which cannot keep the restore's one transaction: use the Session pooler connection string (port 5432).`
      })
    }
    return { url, allowNonEmpty }
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error
    problems.push({ input: Input.DatabaseUrl, message: error.message })
    return undefined
  }
}

/**
 * The row is read with `supabase-key`, or with `backup-api-key` through the update-backup
 * function's lookup (by id or dispatch id; it cannot search by key). With `s3-key` the Supabase
 * inputs are optional: without them the object is restored with no row to check, for when the
 * database itself is what was lost.
 */
function parseRestoreLedger(
  read: InputReader<InputName>,
  target: RestoreTarget | undefined,
  problems: InputProblem[]
): LedgerTarget | undefined {
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
