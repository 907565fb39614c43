import * as core from '@actions/core'
import type { RunContext } from '../runner/context.js'
import { InputError, LedgerError, messageOf, VerificationError } from '../errors.js'
import { parseBackupInputs, secretValues, type InputName } from './inputs.js'
import type { BackupRow, Ledger, Outcome } from '../ledger/ledger.js'
import { newClaimToken, openLedger } from '../ledger/open.js'
import type { InputReader } from '../runner/inputs.js'
import { retry, type RetryPolicy } from '../retry.js'
import { maskSecrets } from '../runner/secrets.js'
import { describeStop, type RunState, type StateStore } from '../runner/state.js'
import { abortUploadRetrying, createS3Client, isTransientStoreError, objectUrl, openUploads } from '../store/s3.js'
import { writeSummary } from '../runner/summary.js'
import { removeDumpLeftovers } from '../sources/database/leftovers.js'
import { verifyUploaded } from '../store/verify.js'

/** post retries the database, and the store, for up to a minute each: well inside the runner's ~5 min cancel budget. */
const POST_RETRY: RetryPolicy = { budgetMs: 50_000, initialDelayMs: 1_000, maxDelayMs: 8_000 }
/** verify: download reads the object back within this, so post still ends inside the cancel budget. */
const POST_DOWNLOAD_BUDGET_MS = 180_000

/**
 * post: from the saved state alone, finishes whatever main left open. Aborts an unfinished
 * upload, marks the row success only if the object is complete and verified, otherwise failed
 * with what happened. A no-op when main already finalized the row.
 */
export async function runPost(read: InputReader<InputName>, context: RunContext, state: StateStore): Promise<void> {
  maskSecrets(secretValues(read))
  const saved = state.load()
  for (const done of await removeDumpLeftovers(saved.dumpPids ?? '', saved.spoolDir ?? ''))
    core.info(`Left by main's database dump: ${done}.`)
  if (saved.phase === 'finalized') {
    if (saved.ownedBy) core.info(`The backup row is being backed up by run ${saved.ownedBy}; nothing to do.`)
    else core.info(`main already finalized the backup row (${saved.finalStatus ?? 'done'}).`)
    // main could not abort its upload (the store was unreachable then): the only thing left to do.
    if (saved.uploadId && saved.bucket && saved.key) await abortUnfinished(read, saved.bucket, saved.key, saved.uploadId)
    return
  }
  let setup
  // As the job whose claim main made: main saved its token before it claimed anything.
  const claimToken = saved.claimToken ?? newClaimToken(context)
  try {
    setup = openLedger(read, { runId: context.runId, claimToken }, POST_RETRY, core.info)
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    core.info('main refused its inputs before touching any row; nothing to finalize.')
    return
  }
  const { ledger } = setup
  const dispatchId = saved.dispatchId ?? setup.dispatchId ?? ''
  // Inputs that identify the row but are refused: if main did not get to fail it, post does, with why.
  if (setup.refusal && !saved.failure) saved.failure = setup.refusal.message

  let rowId = saved.rowId
  if (!rowId) {
    if (saved.failure) {
      core.info(`main could not identify the row (${saved.failure}); nothing to finalize.`)
      return
    }
    if (!dispatchId) {
      core.info('main stopped before it created a row; nothing to finalize.')
      return
    }
    // main was stopped before it claimed the row (even before it saved any state): find the row
    // ourselves so that it cannot stay in_progress.
    const row = await locateUnclaimed(ledger, dispatchId)
    if (!row) return
    rowId = row.id
  }

  const { outcome, verification } = await decideOutcome(read, saved)
  try {
    const result = await ledger.finalize(rowId, outcome)
    const status = result.row.status
    if (status === 'in_progress') {
      core.info(`Row ${rowId} is being backed up by run ${result.row.workflow_run_id}; left to that run.`)
      return
    }
    if (result.written) core.info(`Row ${rowId} marked ${status}.`)
    else core.info(`Row ${rowId} was already ${status}; left unchanged.`)
    await writeSummary('Backup (finalized by post)', {
      status,
      dispatchId,
      rowId,
      location: saved.bucket && saved.key ? objectUrl(saved.bucket, saved.key) : undefined,
      sizeBytes: result.row.size_bytes ?? undefined,
      sha256: status === 'success' ? saved.sha256 : undefined,
      verification: result.written && status === 'success' ? verification : undefined,
      reason: result.row.error_text ?? undefined
    })
    if (status === 'failed') {
      core.error(result.row.error_text ?? 'The backup failed.', { title: 'Backup failed' })
      process.exitCode = 1
    }
  } catch (error) {
    throw failLoudly(dispatchId, rowId, error)
  }
}

/** The row, claimed for this run, if it is still in_progress and no other run holds it. */
async function locateUnclaimed(ledger: Ledger, dispatchId: string): Promise<BackupRow | undefined> {
  let claim
  try {
    claim = await ledger.claim(await ledger.locate(dispatchId))
  } catch (error) {
    if (error instanceof LedgerError && !error.transient && /^No .* row has dispatch_id/.test(error.message)) {
      core.info(`No row has dispatch_id ${dispatchId}; nothing to finalize.`)
      return undefined
    }
    throw failLoudly(dispatchId, undefined, error)
  }
  if (claim.claimed) return claim.row
  const { row } = claim
  if (row.status !== 'in_progress') core.info(`Row ${row.id} is already ${row.status}; nothing to do.`)
  else if (claim.heldBy === 'another-job')
    core.info(`Row ${row.id} is held by another job of this run (${row.claimed_by}); leaving it to that job.`)
  else core.info(`Row ${row.id} is being backed up by run ${row.workflow_run_id}; leaving it to that run.`)
  return undefined
}

/** success only for an object that is complete and matches what main uploaded; else failed with why. */
async function decideOutcome(read: InputReader<InputName>, saved: Partial<RunState>): Promise<{ outcome: Outcome; verification?: string }> {
  const reason = saved.failure ?? describeStop(saved)
  const { bucket, key } = saved
  if (!bucket || !key) return { outcome: { status: 'failed', errorText: reason } }

  let client
  let inputs
  try {
    inputs = parseBackupInputs(read)
    client = createS3Client(inputs)
  } catch (error) {
    return {
      outcome: { status: 'failed', errorText: `${reason} The post step could not reach the store to clean up: ${messageOf(error)}` }
    }
  }
  const objectMayBeComplete = saved.phase === 'completing' || saved.phase === 'verifying' || saved.phase === 'recording'
  let unconfirmed = ''
  if (objectMayBeComplete && saved.archiveBytes !== undefined && saved.sha256) {
    const expected = {
      size: saved.archiveBytes,
      sha256: saved.sha256,
      etags: saved.expectedEtag?.split(' ') ?? [],
      crc32s: saved.expectedCrc32?.split(' ') ?? []
    }
    const deadline = AbortSignal.timeout(POST_DOWNLOAD_BUDGET_MS)
    try {
      const report = await verifyUploaded(client, bucket, key, expected, inputs.verify, POST_RETRY, deadline)
      core.info(`${report.summary} The object is complete.`)
      return {
        outcome: { status: 'success', s3Key: key, sizeBytes: saved.archiveBytes, sha256: saved.sha256 },
        verification: report.checks
      }
    } catch (error) {
      core.info(`The object is not complete: ${messageOf(error)}`)
      // The store never answered: the object may be complete, and the row must say where it was left.
      if (deadline.aborted) {
        unconfirmed = ` Reading ${objectUrl(bucket, key)} back (verify: download) did not finish within the post step's ${POST_DOWNLOAD_BUDGET_MS / 60_000} minutes; it was left in the store as it is.`
      } else if (!(error instanceof VerificationError)) unconfirmed = ` ${messageOf(error)}`
    }
  }
  try {
    await abortLeftoverUploads(client, bucket, key, saved)
  } catch (error) {
    core.warning(`Could not abort the unfinished upload: ${messageOf(error)}`)
    return {
      outcome: {
        status: 'failed',
        errorText: `${reason}${unconfirmed} The unfinished upload could not be aborted (${messageOf(error)}); add a lifecycle rule that aborts incomplete multipart uploads.`
      }
    }
  }
  return { outcome: { status: 'failed', errorText: `${reason}${unconfirmed}` } }
}

/** Aborts the saved upload, and any upload of our key that main started but had no time to save. */
async function abortLeftoverUploads(
  client: ReturnType<typeof createS3Client>,
  bucket: string,
  key: string,
  saved: Partial<RunState>
): Promise<void> {
  const uploadIds = new Set<string>()
  if (saved.uploadId) uploadIds.add(saved.uploadId)
  if (saved.phase === 'uploading' && !saved.uploadId) {
    const since = saved.uploadStartedAt ? Date.parse(saved.uploadStartedAt) - 1000 : 0
    for (const upload of await retry(() => openUploads(client, bucket, key), isTransientStoreError, POST_RETRY)) {
      if (!upload.initiated || upload.initiated.getTime() >= since) uploadIds.add(upload.uploadId)
    }
  }
  for (const uploadId of uploadIds) {
    await abortUploadRetrying(client, bucket, key, uploadId, POST_RETRY)
    core.info(`Aborted the unfinished upload ${uploadId} of ${objectUrl(bucket, key)}.`)
  }
}

/** Aborts the upload main left open after it had finalized the row; the step fails if it cannot. */
async function abortUnfinished(read: InputReader<InputName>, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await abortUploadRetrying(createS3Client(parseBackupInputs(read)), bucket, key, uploadId, POST_RETRY)
    core.info(`Aborted the unfinished upload ${uploadId} of ${objectUrl(bucket, key)}.`)
  } catch (error) {
    throw new Error(
      `Could not abort the unfinished upload ${uploadId} of ${objectUrl(bucket, key)}: ${messageOf(error)} Abort it by hand, or add a lifecycle rule that aborts incomplete multipart uploads.`,
      { cause: error }
    )
  }
}

function failLoudly(dispatchId: string, rowId: string | undefined, error: unknown): Error {
  return new Error(
    `Could not finalize backup ${dispatchId}${rowId ? ` (row ${rowId})` : ''}: ${messageOf(error)} The row may still be in_progress; a scheduled sweep will mark it failed, or fix the cause and re-run.`,
    { cause: error }
  )
}
