import * as core from '@actions/core'
import { randomUUID } from 'node:crypto'
import { createArchive } from './archive.js'
import { CONTENT_TYPES } from '../archive/formats.js'
import type { RunContext } from '../runner/context.js'
import { CancelledError, InputError, messageOf, StoreError } from '../errors.js'
import { collectEntries } from '../sources/files/collect.js'
import { parseBackupInputs, SECRET_INPUTS, type BackupInputs, type InputName } from './inputs.js'
import { renderKey } from './key.js'
import { isTransient, ownedByAnotherRun, type BackupRow, type ClaimResult, type Ledger } from '../ledger/ledger.js'
import { openLedger } from '../ledger/open.js'
import type { InputReader } from '../runner/inputs.js'
import type { RetryPolicy } from '../retry.js'
import { maskSecretInputs } from '../runner/secrets.js'
import { describeStop, type StateStore } from '../runner/state.js'
import { createS3Client, keyIsTaken, objectUrl, usesTls } from '../store/s3.js'
import { formatBytes, writeSummary } from '../runner/summary.js'
import { uploadStream, type UploadIntegrity } from '../store/upload.js'
import { verifyUploaded } from '../store/verify.js'

/** main's budget for the database and the store: short, because post retries for a minute if main cannot finish. */
const MAIN_RETRY: RetryPolicy = { budgetMs: 20_000, initialDelayMs: 500, maxDelayMs: 4_000 }
const PROGRESS_LOG_INTERVAL_MS = 5_000

export const Output = {
  BackupId: 'backup-id',
  DispatchId: 'dispatch-id',
  S3Key: 's3-key',
  SizeBytes: 'size-bytes',
  Sha256: 'sha256',
  Status: 'status'
} as const

/**
 * main: find (or create) the row, claim it, stream the archive to the store, verify the
 * object, mark the row success. Any failure before the object is verified marks it failed.
 * Each phase is saved to the runner state before it starts, for post.
 */
export async function runBackup(read: InputReader<InputName>, context: RunContext, state: StateStore, signal: AbortSignal): Promise<void> {
  const startedAt = Date.now()
  maskSecretInputs(read, SECRET_INPUTS)
  const { ledger, dispatchId: givenDispatchId, createRow } = openLedger(read, context.runId, MAIN_RETRY, core.info)
  let inputs: BackupInputs | undefined
  let inputError: InputError | undefined
  try {
    inputs = parseBackupInputs(read)
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    inputError = error
  }
  // A scheduled run with bad inputs creates nothing: there is no half-written row to clean up.
  if (inputError && createRow) throw inputError

  const dispatchId = givenDispatchId ?? randomUUID()
  state.save({ phase: 'locating', dispatchId })
  core.setOutput(Output.DispatchId, dispatchId)
  let claim: ClaimResult
  try {
    const found = createRow ? await ledger.create(dispatchId) : await ledger.locate(dispatchId)
    core.setOutput(Output.BackupId, found.id)
    claim = found.status === 'in_progress' ? await ledger.claim(found) : { claimed: false, row: found }
  } catch (error) {
    // A lasting refusal (no such row, RLS) leaves post nothing to do; if the database was
    // unreachable, post looks the row up again and finalizes it.
    if (!isTransient(error)) state.save({ failure: messageOf(error) })
    throw error
  }
  if (!claim.claimed) {
    if (ownedByAnotherRun(claim.row, context.runId)) return leaveToOwner(claim.row, state, inputError)
    return reportAlreadyFinished(claim.row, state)
  }
  const row = claim.row
  if (inputError) {
    await recordFailure(ledger, row, inputError.message, state)
    throw inputError
  }
  if (!inputs) throw new Error('unreachable: inputs are valid here')

  state.save({ phase: 'claimed', rowId: row.id })
  core.info(`Backing up to row ${row.id} (dispatch ${dispatchId}).`)

  let verified = false
  let files = 0
  try {
    signal.throwIfAborted()
    const entries = await core.group('Listing files', async () => {
      const listed = await collectEntries(inputs.patterns, { workspace: context.workspace, includeHiddenFiles: inputs.includeHiddenFiles })
      core.info(`${listed.length} entries matched.`)
      return listed
    })
    files = entries.files
    const key = renderKey(inputs.keyTemplate, {
      now: new Date(),
      dispatchId,
      runId: context.runId,
      runAttempt: context.runAttempt,
      repository: context.repository,
      extension: inputs.format
    })
    core.setOutput(Output.S3Key, key)
    const client = createS3Client(inputs)
    const where = objectUrl(inputs.bucket, key)
    signal.throwIfAborted()
    if (await keyIsTaken(client, inputs.bucket, key, signal)) {
      throw new StoreError(
        `An object already exists at ${where} and the action never overwrites. Use a 'key' that includes {timestamp} or {dispatch_id}.`
      )
    }

    const uploadStart = Date.now()
    state.save({ phase: 'uploading', bucket: inputs.bucket, key, bytesSent: 0, uploadStartedAt: new Date(uploadStart).toISOString() })
    signal.throwIfAborted()
    const archive = createArchive(entries, inputs.format, inputs.compressionLevel)
    const upload = await core.group(`Uploading ${inputs.format} archive to ${where}`, async () => {
      let bytesUploaded = 0
      const totalBytes = entries.bytes
      const logProgress = (): void => {
        const { bytesRead, filesRead } = archive.progress
        const rate = bytesRead / Math.max((Date.now() - uploadStart) / 1000, 0.001)
        core.info(
          `Read ${formatBytes(bytesRead)} of ${formatBytes(totalBytes)} (${filesRead} of ${files} files, ${formatBytes(rate)}/s), uploaded ${formatBytes(bytesUploaded)}.`
        )
      }
      const ticker = setInterval(logProgress, PROGRESS_LOG_INTERVAL_MS)
      try {
        const result = await uploadStream(
          client,
          {
            bucket: inputs.bucket,
            key,
            contentType: CONTENT_TYPES[inputs.format],
            metadata: { 'dispatch-id': dispatchId, 'run-id': context.runId },
            storage: inputs.storage,
            integrity: uploadIntegrity(inputs)
          },
          archive.pieces,
          signal,
          {
            onUploadCreated: uploadId => state.save({ uploadId }),
            onUploadAborted: () => state.save({ uploadId: '' }),
            onPartSent: bytesSent => state.save({ bytesSent }),
            onProgress: uploaded => {
              bytesUploaded = uploaded
            },
            onBeforeComplete: expected =>
              state.save({
                phase: 'completing',
                archiveBytes: expected.size,
                expectedEtag: expected.etags.join(' '),
                expectedCrc32: expected.crc32s.join(' '),
                sha256: expected.sha256
              }),
            onChecksumsRefused: reason =>
              core.warning(
                `The store refused S3's additional checksums (${reason}); uploading without them, verified by size and ETag. Set 'verify: none' to skip them from the start.`
              )
          }
        )
        core.info(
          `Archived ${formatBytes(totalBytes)} in ${files} files into ${formatBytes(result.size)}, uploaded in ${result.parts} parts (${formatBytes(totalBytes / Math.max((Date.now() - uploadStart) / 1000, 0.001))}/s).`
        )
        return result
      } finally {
        clearInterval(ticker)
      }
    })
    const uploadMs = Date.now() - uploadStart

    state.save({ phase: 'verifying', uploadId: '' })
    const report = await verifyUploaded(
      client,
      inputs.bucket,
      key,
      { ...upload.expected, sha256: upload.sha256 },
      inputs.verify,
      MAIN_RETRY,
      signal
    )
    if (report.storeChecksumMissing) core.info('The store keeps no CRC32 checksum of the object (it ignores S3 additional checksums).')
    core.info(report.summary)
    verified = true
    core.setOutput(Output.SizeBytes, String(upload.size))
    core.setOutput(Output.Sha256, upload.sha256)

    state.save({ phase: 'recording' })
    const written = await ledger.finalize(row.id, { status: 'success', s3Key: key, sizeBytes: upload.size, sha256: upload.sha256 })
    state.save({ phase: 'finalized', finalStatus: written.row.status })
    core.setOutput(Output.Status, written.row.status)
    await writeSummary('Backup', {
      status: written.row.status,
      dispatchId,
      rowId: row.id,
      location: where,
      sizeBytes: upload.size,
      sha256: upload.sha256,
      verification: report.checks,
      files,
      bytesRead: archive.progress.bytesRead,
      format: inputs.format,
      durationMs: Date.now() - startedAt,
      uploadMs
    })
    if (written.row.status !== 'success') {
      throw new Error(
        `${where} was uploaded and verified, but the row was already marked ${written.row.status} by another writer: ${written.row.error_text ?? ''}`
      )
    }
    core.notice(`${where}: ${formatBytes(upload.size)}, ${files} files, SHA-256 ${upload.sha256}. Row ${row.id} marked success.`, {
      title: 'Backup succeeded'
    })
  } catch (caught) {
    const error = signal.aborted && !(caught instanceof InputError) ? (signal.reason as CancelledError) : caught
    // A verified object is finished work: post marks it success even if this write failed.
    if (verified) throw error
    const message = error instanceof CancelledError ? describeStop(state.load()) : messageOf(error)
    await recordFailure(ledger, row, message, state)
    await writeSummary('Backup failed', { status: 'failed', dispatchId, rowId: row.id, files, reason: message })
    throw new Error(message, { cause: error })
  }
}

/** What the upload sends for the store to check, by `verify`: nothing with none, whose stores may refuse checksums. */
function uploadIntegrity(inputs: BackupInputs): UploadIntegrity {
  const checked = inputs.verify !== 'none'
  return { checksums: checked, md5: checked, signedPayload: !usesTls(inputs) }
}

/** Marks the row failed; if the database cannot be reached now, post will retry from state. */
async function recordFailure(ledger: Ledger, row: BackupRow, message: string, state: StateStore): Promise<void> {
  state.save({ failure: message, rowId: row.id })
  try {
    const written = await ledger.finalize(row.id, { status: 'failed', errorText: message })
    state.save({ phase: 'finalized', finalStatus: written.row.status })
    core.setOutput(Output.Status, written.row.status)
  } catch (error) {
    core.warning(`Could not mark row ${row.id} failed yet (${messageOf(error)}); the post step will retry.`)
  }
}

function reportAlreadyFinished(row: BackupRow, state: StateStore): void {
  state.save({ phase: 'finalized', rowId: row.id, finalStatus: row.status })
  core.setOutput(Output.BackupId, row.id)
  core.setOutput(Output.Status, row.status)
  if (row.s3_key) core.setOutput(Output.S3Key, row.s3_key)
  if (row.size_bytes !== null) core.setOutput(Output.SizeBytes, String(row.size_bytes))
  core.notice(`Backup row ${row.id} is already ${row.status}${row.finished_at ? ` (finished ${row.finished_at})` : ''}; nothing to do.`, {
    title: 'Backup already finished'
  })
}

/** Double dispatch: another run holds the row. Leave it, and its object, to that run. */
function leaveToOwner(row: BackupRow, state: StateStore, inputError: InputError | undefined): void {
  state.save({ phase: 'finalized', rowId: row.id, ownedBy: row.workflow_run_id ?? '' })
  core.notice(`Row ${row.id} is being backed up by run ${row.workflow_run_id}; this run leaves it, and its object, to that run.`, {
    title: 'Backup already running'
  })
  // Bad inputs still fail this step, but not the row that run is working on.
  if (inputError) throw inputError
}
