import * as core from '@actions/core'
import { stat, readdir } from 'node:fs/promises'
import type { RunContext } from '../runner/context.js'
import { objectSource } from '../store/download.js'
import type { S3Client } from '@aws-sdk/client-s3'
import { DatabaseError, InputError, LedgerError, StoreError, VerificationError } from '../errors.js'
import type { ArchiveItem } from '../extract/entry.js'
import { extractInto, type ExtractResult } from '../extract/extract.js'
import { MANIFEST_PATH, parseManifest, partPath, PART_NAMES, type DatabaseManifest } from '../postgres/manifest.js'
import { DatabaseRestore, type TableCheck } from './database.js'
import { ArchiveReader } from '../extract/read-archive.js'
import { decryptIfEncrypted, type DecryptedSource } from '../extract/decrypt.js'
import type { ArchiveSource } from '../extract/source.js'
import type { Opening } from '../crypto/keys.js'
import { Input, parseRestoreInputs, secretValues, type InputName, type RestoreInputs } from './inputs.js'
import type { InputReader } from '../runner/inputs.js'
import { isTransient, type BackupRow, type LedgerBackend } from '../ledger/ledger.js'
import { ledgerBackend } from '../ledger/open.js'
import type { TableLedgerBackend } from '../ledger/table-backend.js'
import { retry, type RetryPolicy } from '../retry.js'
import { maskSecrets } from '../runner/secrets.js'
import { createS3Client, headObject, objectUrl, type HeadResult } from '../store/s3.js'
import { formatBytes } from '../runner/summary.js'
import os from 'node:os'
import { StoragePart, type StorageRestoreResult } from './storage.js'

export const RestoreOutput = {
  Files: 'files',
  Bytes: 'bytes',
  Sha256: 'sha256',
  Tables: 'tables',
  Rows: 'rows',
  StorageObjects: 'storage-objects',
  PlaintextSha256: 'plaintext-sha256'
} as const

const LOOKUP_RETRY: RetryPolicy = { budgetMs: 30_000, initialDelayMs: 1_000, maxDelayMs: 8_000 }

/** The object to restore, checked against its row before a byte is read. */
interface RestoreObject {
  client: S3Client
  key: string
  where: string
  head: HeadResult
  expected: { sha256: string; from: string } | undefined
}

/**
 * The restore: finds the backup's row (it must be `success`), checks the object's size against
 * it, streams the object down once and extracts its files into a temporary directory beside
 * `path`, which is renamed into place only after every entry is written and the SHA-256 matched.
 * With `database-url`, the database/ part goes to psql in one transaction, committed at that same
 * moment, once every table's row count matches the manifest.
 */
export async function runRestore(read: InputReader<InputName>, context: RunContext, signal: AbortSignal): Promise<void> {
  maskSecrets(secretValues(read))
  const inputs = parseRestoreInputs(read, context.workspace)
  const startedAt = Date.now()
  const row = await findRow(inputs)
  if (inputs.destination) await checkDestination(inputs.destination)
  const object = await findObject(inputs, row, signal)
  const target = inputs.database
  const database = target
    ? await core.group('Checking the database', () => DatabaseRestore.open(target.url, target.allowNonEmpty, core.info))
    : undefined
  const storage = inputs.storage ? new StoragePart(inputs.storage, process.env.RUNNER_TEMP || os.tmpdir(), signal) : undefined
  let restored: Restored
  try {
    await storage?.checkNamedBuckets()
    restored = await restoreArchive(inputs, object, database, storage, signal)
    if (storage) restored.storage = await uploadStorage(storage)
  } finally {
    await storage?.close()
  }
  const seconds = (Date.now() - startedAt) / 1000
  reportRestore(inputs, object, restored, seconds)
  await writeRestoreSummary(object.where, inputs.destination, restored, seconds, row)
}

/** The object, which must exist and have the size the row recorded, and the SHA-256 it must have. */
async function findObject(inputs: RestoreInputs, row: BackupRow | undefined, signal: AbortSignal): Promise<RestoreObject> {
  const key = row?.s3_key ?? (inputs.target.kind === 's3-key' ? inputs.target.key : '')
  const where = objectUrl(inputs.store.bucket, key)
  const client = createS3Client(inputs.store)
  const head = await headObject(client, inputs.store.bucket, key, signal)
  if (!head) {
    throw new StoreError(
      `${where}${row ? ` (the object of backup ${row.id})` : ''} does not exist: check 'bucket', and whether a lifecycle rule or someone deleted it.`
    )
  }
  if (row && head.size !== Number(row.size_bytes)) {
    throw new VerificationError(
      `${where} has ${head.size} bytes but backup ${row.id} recorded ${row.size_bytes}: the object is not the archive that was backed up; refusing to restore it.`
    )
  }
  const expected = expectedSha256(row, head.metadata)
  if (!expected)
    core.notice(
      `Neither the row nor the object records a SHA-256 for ${where}: its content is checked by size and by the archive's own structure and CRCs only.`
    )
  return { client, key, where, head, expected }
}

/** What a restore did: the files written (or only checked), the database's tables, the archive read. */
interface Restored {
  files: ExtractResult
  tables: TableCheck[] | undefined
  storage?: StorageRestoreResult | undefined
  format: string
  /** SHA-256 of the object as stored. */
  sha256: string
  /** SHA-256 of the archive inside, when the object was encrypted. */
  plaintextSha256?: string | undefined
}

/**
 * Reads the object once: files into `path` (or only checked, without it), the database part into
 * psql. Nothing is committed (the directory renamed into place, the transaction) before the whole
 * object was read and its SHA-256 matched; a failure leaves nothing behind.
 */
async function restoreArchive(
  inputs: RestoreInputs,
  object: RestoreObject,
  database: DatabaseRestore | undefined,
  storage: StoragePart | undefined,
  signal: AbortSignal
): Promise<Restored> {
  const { where, expected } = object
  core.info(`Restoring ${where} (${formatBytes(object.head.size)})${inputs.destination ? ` into ${inputs.destination}` : ''}.`)
  const stored = objectSource(object.client, inputs.store.bucket, object.key, object.head)
  const decrypted = inputs.decryption ? await openEncrypted(stored, inputs.decryption, signal) : undefined
  const reader = new ArchiveReader(decrypted ?? stored, {
    limits: inputs.limits,
    warn: message => core.warning(message),
    signal
  })
  const part = new DatabasePart(database)
  let tables: TableCheck[] | undefined
  const commit = async (): Promise<void> => {
    // The row records the object as stored: for an encrypted one, the age file.
    const { sha256 } = decrypted ? decrypted.stored() : reader.download
    if (expected && sha256 !== expected.sha256) {
      throw new VerificationError(
        `${where} has SHA-256 ${sha256} but ${expected.from} records ${expected.sha256}: the object changed after it was backed up; nothing was restored.`
      )
    }
    // Storage refuses (a taken key, an object unlike its manifest entry) before the database commits.
    await storage?.check()
    tables = await part.commit()
  }
  try {
    const routed = part.route(reader.items())
    const items = storage ? storage.route(routed) : routed
    const files = inputs.destination ? await extractInto(inputs.destination, items, commit) : await checkOnly(items, commit)
    const { format, sha256 } = reader.download
    return decrypted
      ? { files, tables, format, sha256: decrypted.stored().sha256, plaintextSha256: sha256 }
      : { files, tables, format, sha256 }
  } catch (error) {
    await database?.abort()
    const checks = (error as { checks?: TableCheck[] }).checks
    if (checks) await writeTableSummary('Database restore failed', checks)
    throw error
  }
}

/**
 * The archive inside an age-encrypted object, opened with the decryption inputs; undefined for an
 * object that is not encrypted, which is restored as it is. A wrong identity fails here, before
 * the download.
 */
async function openEncrypted(stored: ArchiveSource, opening: Opening, signal: AbortSignal): Promise<DecryptedSource | undefined> {
  const decrypted = await decryptIfEncrypted(stored, opening, signal)
  if (!decrypted) {
    core.notice(`${stored.name} is not encrypted: 'decrypt-identity' and 'decrypt-passphrase' are not needed to restore it.`)
    return undefined
  }
  core.info(`${stored.name} is encrypted with age; ${decrypted.openedBy} opens it. Each chunk is authenticated as it is read.`)
  return decrypted
}

/**
 * The Storage objects, uploaded once the archive was read and checked, the database committed
 * and the files in place: the only part that cannot be undone, so it comes last.
 */
async function uploadStorage(storage: StoragePart): Promise<StorageRestoreResult> {
  return core.group('Restoring Storage objects', async () => {
    let last = Date.now()
    const result = await storage.upload(objects => {
      if (Date.now() - last < 5_000) return
      last = Date.now()
      core.info(`Uploaded ${objects} objects.`)
    })
    for (const bucket of result.buckets) {
      core.info(`${bucket.objects} objects from bucket ${bucket.from} into ${bucket.to}.`)
    }
    return result
  })
}

/** Without `path`: every entry is read (and so checked) and none written. */
async function checkOnly(items: AsyncIterable<ArchiveItem>, commit: () => Promise<void>): Promise<ExtractResult> {
  const result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0 }
  for await (const item of items) for await (const piece of item.data) result.bytes += piece.length
  await commit()
  return result
}

/**
 * The archive's database/ part: roles.sql, schema.sql and data.sql go to psql as they are read,
 * manifest.json is kept for the row counts; everything else goes on to the files. Without a
 * database to restore into, everything goes on to the files.
 */
class DatabasePart {
  private manifest: DatabaseManifest | undefined

  constructor(private readonly database: DatabaseRestore | undefined) {}

  async *route(items: AsyncIterable<ArchiveItem>): AsyncGenerator<ArchiveItem> {
    for await (const item of items) {
      const part = this.database && item.type === 'file' ? PART_NAMES.find(name => partPath(name) === item.path) : undefined
      if (part) await this.database?.apply(part, item.data)
      else if (this.database && item.path === MANIFEST_PATH) this.manifest = parseManifest(await text(item.data))
      else yield item
    }
  }

  /** Counts and commits; undefined without a database. */
  async commit(): Promise<TableCheck[] | undefined> {
    if (!this.database) return undefined
    if (!this.manifest) {
      throw new DatabaseError(
        `The archive has no ${MANIFEST_PATH}: it holds no database (the backup was made without 'database-url'); nothing was restored.`
      )
    }
    return this.database.finish(this.manifest, true)
  }
}

async function text(data: AsyncIterable<Buffer>): Promise<string> {
  const pieces: Buffer[] = []
  for await (const piece of data) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces).toString('utf8')
}

function reportRestore(inputs: RestoreInputs, object: RestoreObject, restored: Restored, seconds: number): void {
  const { files, tables, format, sha256 } = restored
  const rows = tables?.reduce((sum, table) => sum + table.rows, 0) ?? 0
  const what = [
    ...(inputs.destination
      ? [
          `${files.files} files (${formatBytes(files.bytes)}), ${files.directories} directories and ${files.symlinks} symlinks into ${inputs.destination}`
        ]
      : []),
    ...(tables ? [`${tables.length} tables (${rows} rows, each count as the manifest says) into ${inputs.database?.url.display}`] : []),
    ...(restored.storage
      ? [
          `${restored.storage.objects} Storage objects (${formatBytes(restored.storage.bytes)}, each SHA-256 as the manifest says) with their content types and metadata`
        ]
      : [])
  ].join(', and ')
  core.info(
    `Restored ${what} from the ${format} archive in ${seconds.toFixed(1)} s${object.expected ? `; SHA-256 matches ${object.expected.from}` : ''}.`
  )
  core.setOutput(RestoreOutput.Files, String(files.files))
  core.setOutput(RestoreOutput.Bytes, String(files.bytes))
  core.setOutput(RestoreOutput.Sha256, sha256)
  if (restored.plaintextSha256) core.setOutput(RestoreOutput.PlaintextSha256, restored.plaintextSha256)
  if (restored.storage) core.setOutput(RestoreOutput.StorageObjects, String(restored.storage.objects))
  if (tables) {
    core.setOutput(RestoreOutput.Tables, String(tables.length))
    core.setOutput(RestoreOutput.Rows, String(rows))
  }
}

/**
 * The SHA-256 the object must have: the row's `sha256` column when the table has one and it is
 * set, else the `sha256` metadata the upload stored on the object, else none to compare.
 */
export function expectedSha256(row: BackupRow | undefined, metadata: Record<string, string>): { sha256: string; from: string } | undefined {
  if (row?.sha256) return { sha256: row.sha256.toLowerCase(), from: `backup ${row.id}` }
  const fromObject = metadata.sha256
  if (fromObject) return { sha256: fromObject.toLowerCase(), from: "the object's sha256 metadata" }
  return undefined
}

/** The backup's row, which must be `success`; undefined for `s3-key` without Supabase inputs. */
async function findRow(inputs: RestoreInputs): Promise<BackupRow | undefined> {
  const { ledger, target } = inputs
  if (!ledger) {
    core.notice(`No Supabase inputs: restoring the object at 's3-key' without checking a backup row.`)
    return undefined
  }
  const backend: LedgerBackend & Partial<Pick<TableLedgerBackend, 'findByS3Key'>> = ledgerBackend(ledger)
  const rows = await retry(
    async () => {
      if (target.kind === 'backup-id') return [await backend.getById(target.id)].filter(row => row !== undefined)
      if (target.kind === 'dispatch-id') return backend.findByDispatchId(target.id, 2)
      if (!backend.findByS3Key) throw new LedgerError("Looking a row up by 's3-key' needs 'supabase-key'.")
      return backend.findByS3Key(target.key, 2)
    },
    isTransient,
    LOOKUP_RETRY,
    (error, delayMs) =>
      core.info(
        `Database not reachable (${error instanceof Error ? error.message : String(error)}); retrying in ${Math.round(delayMs / 1000)} s.`
      )
  )
  const wanted =
    target.kind === 's3-key' ? `s3_key ${target.key}` : target.kind === 'backup-id' ? `id ${target.id}` : `dispatch_id ${target.id}`
  if (rows.length === 0) {
    throw new LedgerError(`No ${ledger.table} row has ${wanted}: check '${target.kind}', and ${backend.visibilityHint}.`)
  }
  if (rows.length > 1) throw new LedgerError(`More than one ${ledger.table} row has ${wanted}; restore one of them by 'backup-id'.`)
  const row = rows[0] as BackupRow
  if (row.status !== 'success') {
    const detail =
      row.status === 'failed'
        ? `it failed: ${row.error_text ?? 'no reason recorded'}`
        : `it is still in_progress${row.workflow_run_id ? ` (run ${row.workflow_run_id})` : ''}; wait for it to finish`
    throw new LedgerError(`Backup ${row.id} has status ${row.status}, so there is no archive to restore: ${detail}.`)
  }
  if (!row.s3_key) throw new LedgerError(`Backup ${row.id} is success but has no s3_key; it cannot be restored.`)
  return row
}

/** `path` must be new or an empty directory: a restore never mixes with or replaces existing files. */
async function checkDestination(destination: string): Promise<void> {
  let isDirectory: boolean
  try {
    isDirectory = (await stat(destination)).isDirectory()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new InputError([{ input: Input.Path, message: `${destination} cannot be checked (${(error as NodeJS.ErrnoException).code}).` }])
  }
  if (!isDirectory || (await readdir(destination)).length > 0) {
    throw new InputError([
      {
        input: Input.Path,
        message: `${destination} already exists and is ${isDirectory ? 'not empty' : 'not a directory'}: restore into a new or empty directory; nothing was changed.`
      }
    ])
  }
}

async function writeRestoreSummary(
  where: string,
  destination: string | undefined,
  restored: Restored,
  seconds: number,
  row: BackupRow | undefined
): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const { files, tables, format, sha256 } = restored
  const lines: [string, string][] = [
    ['Backup', row ? `${row.id} (dispatch ${row.dispatch_id ?? '-'}, ${row.finished_at ?? ''})` : 'no row checked'],
    ['Object', where],
    ['Format', format],
    ['SHA-256', sha256],
    ...(restored.plaintextSha256 ? ([['Archive SHA-256', `${restored.plaintextSha256} (decrypted)`]] as [string, string][]) : []),
    ...(destination
      ? ([
          ['Restored into', destination],
          ['Files', `${files.files} (${formatBytes(files.bytes)}), ${files.directories} directories, ${files.symlinks} symlinks`]
        ] as [string, string][])
      : []),
    ...(tables
      ? ([['Database', `${tables.length} tables, ${tables.reduce((sum, table) => sum + table.rows, 0)} rows`]] as [string, string][])
      : []),
    ...(restored.storage
      ? ([
          [
            'Storage',
            `${restored.storage.objects} objects (${formatBytes(restored.storage.bytes)}): ${restored.storage.buckets.map(bucket => (bucket.from === bucket.to ? bucket.to : `${bucket.from} → ${bucket.to}`)).join(', ')}`
          ]
        ] as [string, string][])
      : []),
    ['Duration', `${seconds.toFixed(1)} s`]
  ]
  try {
    await core.summary
      .addHeading('Backup restored', 3)
      .addTable(lines.map(([name, value]) => [{ data: name, header: true }, value]))
      .write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (tables) await writeTableSummary('Tables restored', tables)
}

/** At most this many tables are listed one by one; the rest are summed up. */
const SUMMARY_TABLES = 200

/** The table-by-table check, differences first. */
async function writeTableSummary(title: string, checks: readonly TableCheck[]): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const sorted = [...checks].sort((a, b) => Number(a.restored === a.rows) - Number(b.restored === b.rows))
  const shown = sorted.slice(0, SUMMARY_TABLES)
  const rest = sorted.length - shown.length
  try {
    await core.summary
      .addHeading(title, 4)
      .addTable([
        [
          { data: 'Table', header: true },
          { data: 'Rows in the backup', header: true },
          { data: 'Rows restored', header: true },
          { data: 'Equal', header: true }
        ],
        ...shown.map(check => [
          `${check.schema}.${check.name}`,
          String(check.rows),
          check.restored < 0 ? 'not counted' : String(check.restored),
          check.restored === check.rows ? '✅' : '❌'
        ])
      ])
      .addRaw(rest > 0 ? `\n${rest} more tables, all equal.\n` : '')
      .write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${error instanceof Error ? error.message : String(error)}`)
  }
}
