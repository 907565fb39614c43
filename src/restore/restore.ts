import * as core from '@actions/core'
import { stat, readdir } from 'node:fs/promises'
import type { RunContext } from '../runner/context.js'
import { objectSource } from '../store/download.js'
import { InputError, LedgerError, StoreError, VerificationError } from '../errors.js'
import { extractInto, type ExtractResult } from '../extract/extract.js'
import { ArchiveReader } from '../extract/read-archive.js'
import { Input, parseRestoreInputs, SECRET_INPUTS, type InputName, type RestoreInputs } from './inputs.js'
import type { InputReader } from '../runner/inputs.js'
import { isTransient, type BackupRow, type LedgerBackend } from '../ledger/ledger.js'
import { ledgerBackend } from '../ledger/open.js'
import type { TableLedgerBackend } from '../ledger/table-backend.js'
import { retry, type RetryPolicy } from '../retry.js'
import { maskSecretInputs } from '../runner/secrets.js'
import { createS3Client, headObject, objectUrl } from '../store/s3.js'
import { formatBytes } from '../runner/summary.js'

export const RestoreOutput = {
  Files: 'files',
  Bytes: 'bytes',
  Sha256: 'sha256'
} as const

const LOOKUP_RETRY: RetryPolicy = { budgetMs: 30_000, initialDelayMs: 1_000, maxDelayMs: 8_000 }

/**
 * The restore: finds the backup's row (it must be `success`), checks the object's size against
 * it, streams the object down once and extracts it into a temporary directory beside `path`,
 * which is renamed into place only after every entry is written and the SHA-256 matched.
 */
export async function runRestore(read: InputReader<InputName>, context: RunContext, signal: AbortSignal): Promise<void> {
  maskSecretInputs(read, SECRET_INPUTS)
  const inputs = parseRestoreInputs(read, context.workspace)
  const startedAt = Date.now()
  const row = await findRow(inputs)
  const key = row?.s3_key ?? (inputs.target.kind === 's3-key' ? inputs.target.key : '')
  const where = objectUrl(inputs.store.bucket, key)
  await checkDestination(inputs.destination)

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
  core.info(`Restoring ${where} (${formatBytes(head.size)}) into ${inputs.destination}.`)
  if (!expected)
    core.notice(
      `Neither the row nor the object records a SHA-256 for ${where}: its content is checked by size and by the archive's own structure and CRCs only.`
    )

  const reader = new ArchiveReader(objectSource(client, inputs.store.bucket, key, head), {
    limits: inputs.limits,
    warn: message => core.warning(message),
    signal
  })
  const result = await extractInto(inputs.destination, reader.items(), () => {
    const { sha256 } = reader.download
    if (expected && sha256 !== expected.sha256) {
      throw new VerificationError(
        `${where} has SHA-256 ${sha256} but ${expected.from} records ${expected.sha256}: the object changed after it was backed up; nothing was restored.`
      )
    }
  })
  const { format, sha256 } = reader.download
  const seconds = (Date.now() - startedAt) / 1000
  core.info(
    `Restored ${result.files} files (${formatBytes(result.bytes)}), ${result.directories} directories and ${result.symlinks} symlinks from the ${format} archive into ${inputs.destination} in ${seconds.toFixed(1)} s${expected ? `; SHA-256 matches ${expected.from}` : ''}.`
  )
  core.setOutput(RestoreOutput.Files, String(result.files))
  core.setOutput(RestoreOutput.Bytes, String(result.bytes))
  core.setOutput(RestoreOutput.Sha256, sha256)
  await writeRestoreSummary(where, inputs.destination, format, sha256, result, seconds, row)
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
  destination: string,
  format: string,
  sha256: string,
  result: ExtractResult,
  seconds: number,
  row: BackupRow | undefined
): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const lines: [string, string][] = [
    ['Backup', row ? `${row.id} (dispatch ${row.dispatch_id ?? '-'}, ${row.finished_at ?? ''})` : 'no row checked'],
    ['Object', where],
    ['Format', format],
    ['SHA-256', sha256],
    ['Restored into', destination],
    ['Files', `${result.files} (${formatBytes(result.bytes)}), ${result.directories} directories, ${result.symlinks} symlinks`],
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
}
