import * as core from '@actions/core'
import type { S3Client } from '@aws-sdk/client-s3'
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import { CONTENT_TYPES } from '../archive/formats.js'
import { sealHeader, SCRYPT_WORK_FACTOR } from '../crypto/age.js'
import { encryptArchive, type Plaintext } from '../crypto/encrypt.js'
import type { Sealing } from '../crypto/keys.js'
import { BackupError, CancelledError, InputError, LedgerError, messageOf, StoreError } from '../errors.js'
import { isTransient, type BackupRow, type ClaimResult, type Ledger } from '../ledger/ledger.js'
import { newClaimToken, openLedger } from '../ledger/open.js'
import type { RetryPolicy } from '../retry.js'
import type { RunContext } from '../runner/context.js'
import type { InputReader } from '../runner/inputs.js'
import { maskSecrets } from '../runner/secrets.js'
import { describeStop, type StateStore } from '../runner/state.js'
import { formatBytes, writeSummary } from '../runner/summary.js'
import type { DatabaseManifest } from '../postgres/manifest.js'
import { DatabaseSource, prepareDatabase, type PreparedDatabase } from '../sources/database/source.js'
import { collectEntries } from '../sources/files/collect.js'
import { shownName } from '../archive/names.js'
import { Listing } from '../sources/files/listing.js'
import { prepareStorage, StorageSource, type PreparedStorage, type StorageResult } from '../sources/storage/source.js'
import type { SkippedObject } from '../sources/storage/manifest.js'
import { createS3Client, keyIsTaken, objectUrl, usesTls } from '../store/s3.js'
import { uploadStream, type UploadIntegrity, type UploadResult } from '../store/upload.js'
import { verifyUploaded, type VerificationReport } from '../store/verify.js'
import { createArchive, type Archive, type ArchiveContent } from './archive.js'
import { Input, parseBackupInputs, secretValues, type BackupInputs, type InputName } from './inputs.js'
import { renderKey } from './key.js'

/** main's budget for the database and the store: short, because post retries for a minute if main cannot finish. */
const MAIN_RETRY: RetryPolicy = { budgetMs: 20_000, initialDelayMs: 500, maxDelayMs: 4_000 }
const PROGRESS_LOG_INTERVAL_MS = 5_000

export const Output = {
  BackupId: 'backup-id',
  DispatchId: 'dispatch-id',
  S3Key: 's3-key',
  SizeBytes: 'size-bytes',
  Sha256: 'sha256',
  Status: 'status',
  StorageObjects: 'storage-objects',
  PlaintextSha256: 'plaintext-sha256'
} as const

/** What an encrypted object is stored as: age has no registered media type. */
const ENCRYPTED_CONTENT_TYPE = 'application/octet-stream'
const ENCRYPTED_SUFFIX = '.age'

/** Objects skipped during the backup are each named in a warning up to this many; the manifest lists them all. */
const SKIPPED_WARNINGS = 20

/** The run as main sees it once its inputs are read: the row's ledger, and the inputs or why they were refused. */
interface BackupRun {
  ledger: Ledger
  dispatchId: string
  createRow: boolean
  context: RunContext
  state: StateStore
  signal: AbortSignal
  startedAt: number
  inputs: BackupInputs | undefined
  inputError: InputError | undefined
  /** The database, as preflight found it (before the claim); undefined without database-url. */
  database: PreparedDatabase | undefined
  /** The Storage endpoint and the buckets it has, as preflight found them; undefined without storage-buckets. */
  storage: PreparedStorage | undefined
  /** Why preflight refused the database or Storage: the claimed row fails with it. */
  preflightError: BackupError | undefined
}

/** A claimed row with valid inputs: the work can start. */
interface ClaimedRun extends BackupRun {
  row: BackupRow
  inputs: BackupInputs
}

/** Where the runner lets a step write temporary files (the database spool). */
function runnerTemp(): string {
  return process.env.RUNNER_TEMP || os.tmpdir()
}

/** Where the archive goes. */
interface Destination {
  client: S3Client
  key: string
  /** `s3://bucket/key`, for messages. */
  where: string
}

/** What the failure handler needs to know of how far the work got. */
interface Progress {
  files: number
  /** The object is verified: finished work, which post marks success if main cannot. */
  verified: boolean
}

/**
 * main: find (or create) the row, claim it, stream the archive to the store, verify the
 * object, mark the row success. Any failure before the object is verified marks it failed.
 * Each phase is saved to the runner state before it starts, for post.
 */
export async function runBackup(read: InputReader<InputName>, context: RunContext, state: StateStore, signal: AbortSignal): Promise<void> {
  const startedAt = Date.now()
  maskSecrets(secretValues(read))
  const run = readInputs(read, { context, state, signal, startedAt })
  await prepareSources(run)
  const claimed = await claimRow(run)
  if (!claimed) return

  const progress: Progress = { files: 0, verified: false }
  const database = claimed.database ? databaseSource(claimed, claimed.database) : undefined
  const storage = claimed.storage ? storageSource(claimed, claimed.storage) : undefined
  try {
    signal.throwIfAborted()
    const listing = await listFiles(claimed)
    refuseCollisions(listing, { database: database !== undefined, storage: storage !== undefined })
    const notes = listingNotes(listing, claimed.inputs.format)
    progress.files = listing.files
    const destination = await chooseDestination(claimed)
    if (database && claimed.inputs.format !== 'zip') await spoolDatabase(claimed, database)
    const content = { files: listing, database, storage }
    const { upload, archive, plaintext, uploadMs } = await uploadArchive(claimed, content, destination)
    const report = await verifyUpload(claimed, destination, upload, plaintext)
    progress.verified = true
    await recordSuccess(claimed, destination, upload, report, {
      files: listing.files,
      bytesRead: archive.progress.bytesRead,
      uploadMs,
      database: database?.manifest,
      storage: storage?.result,
      plaintext,
      notes: [...notes, ...storageNotes(storage?.result)]
    })
  } catch (caught) {
    throw await recordError(claimed, progress, caught)
  } finally {
    await database?.close()
    if (database) state.save({ dumpPids: '', spoolDir: '' })
  }
}

/**
 * The ledger inputs (without which no row can be touched: those errors throw), and the backup's,
 * kept for after the claim. Ledger inputs with problems that still identify the row fail it too.
 */
function readInputs(read: InputReader<InputName>, run: Pick<BackupRun, 'context' | 'state' | 'signal' | 'startedAt'>): BackupRun {
  const { context, state } = run
  // Saved before anything is claimed with it, so post writes as this job whatever main got to.
  const token = newClaimToken(context)
  state.save({ claimToken: token })
  const { ledger, dispatchId, createRow, refusal } = openLedger(read, { runId: context.runId, claimToken: token }, MAIN_RETRY, core.info)
  let inputs: BackupInputs | undefined
  let inputError: InputError | undefined
  try {
    inputs = parseBackupInputs(read)
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    inputError = error
  }
  if (refusal) inputError = new InputError([...refusal.problems, ...(inputError?.problems ?? [])])
  // A scheduled run with bad inputs creates nothing: there is no half-written row to clean up.
  if (inputError && createRow) throw inputError
  return {
    ...run,
    ledger,
    dispatchId: dispatchId ?? randomUUID(),
    createRow,
    inputs,
    inputError,
    database: undefined,
    storage: undefined,
    preflightError: undefined
  }
}

/**
 * What can be checked before the row is claimed: the database answers, its version has client
 * tools, and there is room for a spool. A failure here fails the row once claimed, with nothing
 * uploaded or dumped.
 */
async function prepareSources(run: BackupRun): Promise<void> {
  const url = run.inputs?.database
  const storage = run.inputs?.storageSource
  try {
    if (url && run.inputs) {
      run.database = await core.group('Checking the database', () =>
        prepareDatabase(url, run.inputs?.format ?? 'zip', runnerTemp(), core.info)
      )
    }
    if (storage) {
      run.storage = await core.group('Checking Storage', async () => {
        const prepared = await prepareStorage(storage, run.signal)
        core.info(`Storage at ${prepared.endpoint}: backing up ${describeBuckets(prepared.buckets)}.`)
        return prepared
      })
    }
  } catch (error) {
    if (!(error instanceof BackupError)) throw error
    run.preflightError = error
  }
}

function describeBuckets(buckets: readonly string[]): string {
  return buckets.length === 0 ? 'no buckets (the project has none)' : `${buckets.length === 1 ? 'bucket' : 'buckets'} ${buckets.join(', ')}`
}

/**
 * Finds (or creates) the row and claims it for this run. Undefined when there is nothing to do:
 * the row is finished, or another run holds it. Bad backup inputs fail the claimed row.
 */
async function claimRow(run: BackupRun): Promise<ClaimedRun | undefined> {
  const { ledger, dispatchId, state, inputs, inputError } = run
  state.save({ phase: 'locating', dispatchId })
  core.setOutput(Output.DispatchId, dispatchId)
  let claim: ClaimResult
  let refusal: BackupError | undefined = inputError ?? run.preflightError
  try {
    const found = run.createRow ? await createRow(run) : await ledger.locate(dispatchId)
    if ('takenBy' in found) refusal = found.takenBy
    const row = 'takenBy' in found ? found.row : found
    core.setOutput(Output.BackupId, row.id)
    claim = row.status === 'in_progress' ? await ledger.claim(row) : { claimed: false, row, heldBy: 'nobody' }
  } catch (error) {
    // A lasting refusal (no such row, RLS) leaves post nothing to do; if the database was
    // unreachable, post looks the row up again and finalizes it.
    if (!isTransient(error)) state.save({ failure: messageOf(error) })
    throw error
  }
  if (!claim.claimed) {
    if (claim.heldBy === 'another-run') return leaveToOwner(claim.row, state, refusal)
    if (claim.heldBy === 'another-job') return refuseSharedRow(claim.row, state)
    return reportAlreadyFinished(claim.row, state)
  }
  const { row } = claim
  if (refusal) {
    await recordFailure(ledger, row, refusal.message, state)
    throw refusal
  }
  if (!inputs) throw new Error('unreachable: inputs are valid here')

  state.save({ phase: 'claimed', rowId: row.id })
  core.info(`Backing up to row ${row.id} (dispatch ${dispatchId}).`)
  return { ...run, row, inputs }
}

/**
 * create-row's new row, or the row that already has the dispatch id: a step that asked for a new
 * row with an id the app already used is misconfigured, and that row is failed saying so.
 */
async function createRow({ ledger, dispatchId }: BackupRun): Promise<BackupRow | { row: BackupRow; takenBy: InputError }> {
  const { created, row } = await ledger.create(dispatchId)
  if (created) return row
  return {
    row,
    takenBy: new InputError([
      {
        input: Input.CreateRow,
        message: `is true, but a row with dispatch_id ${dispatchId} already exists (row ${row.id}); create-row makes a new row for scheduled runs. To finalize the app's row, pass its dispatch id without 'create-row'; for a new row, leave 'dispatch-id' empty.`
      }
    ])
  }
}

async function listFiles({ inputs, context }: ClaimedRun): Promise<Listing> {
  // The database alone: an empty listing.
  if (inputs.patterns.length === 0) return new Listing(context.workspace)
  return core.group('Listing files', async () => {
    const listed = await collectEntries(inputs.patterns, { workspace: context.workspace, includeHiddenFiles: inputs.includeHiddenFiles })
    core.info(`${listed.length} entries matched.`)
    return listed
  })
}

/**
 * The database and Storage parts have folders of their own in the archive; a workspace path in one
 * would sit beside them, and one of the two would overwrite the other when the archive is
 * extracted. Refused before anything is uploaded.
 */
function refuseCollisions(listing: Listing, parts: { database: boolean; storage: boolean }): void {
  for (const [folder, input] of [
    ['database', parts.database ? Input.DatabaseUrl : undefined],
    ['storage', parts.storage ? Input.StorageBuckets : undefined]
  ] as const) {
    const clash = input ? listing.firstUnder(folder) : undefined
    if (clash) {
      throw new InputError([
        {
          input: Input.Path,
          message: `matched ${shownName(clash)}, but the archive keeps the '${input}' part under ${folder}/: the two would overwrite each other on restore. Exclude it with '!${folder}', or back it up from another directory.`
        }
      ])
    }
  }
}

/**
 * What the listing left out by design, and names a format stores specially: said in the log now
 * and in the job summary, so that nothing `path` matched is missing without a word.
 */
function listingNotes(listing: Listing, format: string): string[] {
  const notes: string[] = []
  const { hidden } = listing
  if (hidden.count > 0) {
    const more = hidden.count > hidden.examples.length ? ', …' : ''
    notes.push(
      `Left out ${hidden.count} dot ${hidden.count === 1 ? 'entry' : 'entries'} that 'path' matched (${hidden.examples.map(shownName).join(', ')}${more}), as 'include-hidden-files' is false.`
    )
  }
  if (listing.pathsNotUtf8 > 0 && format === 'zip') {
    notes.push(
      `${listing.pathsNotUtf8} ${listing.pathsNotUtf8 === 1 ? 'path is' : 'paths are'} not UTF-8: zip stores ${listing.pathsNotUtf8 === 1 ? 'it' : 'them'} as raw bytes without its UTF-8 flag (each with a file comment saying so). The restore action and unzip on Linux give the bytes back; unzip drops a 0xFF byte and control characters from names, tar formats keep every byte.`
    )
  }
  for (const note of notes) core.info(note)
  return notes
}

/** The object's key, and the store's promise that nothing is there yet: the action never overwrites. */
async function chooseDestination({ inputs, dispatchId, context, signal }: ClaimedRun): Promise<Destination> {
  const rendered = renderKey(inputs.keyTemplate, {
    now: new Date(),
    dispatchId,
    runId: context.runId,
    runAttempt: context.runAttempt,
    repository: context.repository,
    extension: inputs.encryption ? `${inputs.format}${ENCRYPTED_SUFFIX}` : inputs.format
  })
  // An encrypted object says so by its name, whatever the template.
  const key = inputs.encryption && !rendered.endsWith(ENCRYPTED_SUFFIX) ? `${rendered}${ENCRYPTED_SUFFIX}` : rendered
  core.setOutput(Output.S3Key, key)
  const client = createS3Client(inputs)
  const where = objectUrl(inputs.bucket, key)
  signal.throwIfAborted()
  if (await keyIsTaken(client, inputs.bucket, key, signal)) {
    throw new StoreError(
      `An object already exists at ${where} and the action never overwrites. Use a 'key' that includes {timestamp} or {dispatch_id}.`
    )
  }
  return { client, key, where }
}

/** The database source, which saves to the state what post must clean up should main be killed. */
function databaseSource({ state, signal }: ClaimedRun, prepared: PreparedDatabase): DatabaseSource {
  return new DatabaseSource(prepared, signal, {
    onTools: pids => state.save({ dumpPids: pids.join(' ') }),
    onSpool: directory => state.save({ spoolDir: directory })
  })
}

/** The Storage source; each object it skips is named in a warning (up to SKIPPED_WARNINGS) as it happens. */
function storageSource({ inputs, signal }: ClaimedRun, prepared: PreparedStorage): StorageSource {
  let warned = 0
  return new StorageSource(prepared, inputs.format !== 'zip', signal, (object: SkippedObject) => {
    warned += 1
    if (warned <= SKIPPED_WARNINGS) core.warning(`Storage object ${object.bucket}/${object.key} is not in the archive: ${object.reason}.`)
  })
}

/** What the summary says of Storage beyond the counts: objects skipped, and objects rewritten while the backup ran. */
function storageNotes(result: StorageResult | undefined): string[] {
  if (!result) return []
  const notes: string[] = []
  const { skipped } = result
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 5).map(object => `${object.bucket}/${object.key} (${object.reason})`)
    notes.push(
      `${skipped.length} Storage ${skipped.length === 1 ? 'object is' : 'objects are'} not in the archive: ${shown.join('; ')}${skipped.length > shown.length ? '; …' : ''}. storage/manifest.json lists each under "skipped".`
    )
  }
  if (result.changed > 0) {
    notes.push(
      `${result.changed} Storage ${result.changed === 1 ? 'object was' : 'objects were'} rewritten after the listing; each is archived whole as it was read, marked "changedAfterListing" in storage/manifest.json.`
    )
  }
  for (const note of notes) core.info(note)
  return notes
}

/** tar needs each file's size before its content: the dump goes to a spool first (phase 'dumping'). */
async function spoolDatabase({ state, signal }: ClaimedRun, database: DatabaseSource): Promise<void> {
  state.save({ phase: 'dumping' })
  signal.throwIfAborted()
  await core.group('Dumping the database', async () => {
    const started = Date.now()
    await database.spool(runnerTemp())
    const manifest = database.manifest
    core.info(
      `Dumped ${manifest?.tables.length ?? 0} tables (${manifest?.tables.reduce((sum, table) => sum + table.rows, 0) ?? 0} rows) in ${((Date.now() - started) / 1000).toFixed(1)} s.`
    )
  })
}

/** Streams the archive into a multipart upload, saving to the state what post needs at each step of it. */
async function uploadArchive(
  run: ClaimedRun,
  content: ArchiveContent,
  { client, key, where }: Destination
): Promise<{ upload: UploadResult; archive: Archive; plaintext: Plaintext | undefined; uploadMs: number }> {
  const { inputs, state, signal } = run
  const listing = content.files
  // Sealed before the upload starts: with a passphrase, scrypt takes a second and 256 MiB.
  const sealed = inputs.encryption ? await sealHeader(inputs.encryption) : undefined
  if (inputs.encryption) core.info(`Encrypting the archive with age, ${describeSealing(inputs.encryption)}.`)
  const uploadStart = Date.now()
  // Where a finalizer looks should this runner be lost mid-upload (no post runs then).
  await run.ledger.recordUploadKey(run.row, key)
  state.save({ phase: 'uploading', bucket: inputs.bucket, key, bytesSent: 0, uploadStartedAt: new Date(uploadStart).toISOString() })
  signal.throwIfAborted()
  const archive = createArchive(content, inputs.format, inputs.compressionLevel)
  const encrypted = sealed ? encryptArchive(archive.pieces, sealed) : undefined
  const upload = await core.group(`Uploading ${encrypted ? 'encrypted ' : ''}${inputs.format} archive to ${where}`, async () => {
    let bytesUploaded = 0
    const ticker = setInterval(() => logProgress(archive, content, uploadStart, bytesUploaded), PROGRESS_LOG_INTERVAL_MS)
    try {
      const result = await uploadStream(
        client,
        {
          bucket: inputs.bucket,
          key,
          contentType: encrypted ? ENCRYPTED_CONTENT_TYPE : CONTENT_TYPES[inputs.format],
          metadata: {
            'dispatch-id': run.dispatchId,
            'run-id': run.context.runId,
            ...(encrypted ? { encryption: `age, ${inputs.format} inside` } : {})
          },
          storage: inputs.storage,
          integrity: uploadIntegrity(inputs)
        },
        encrypted?.pieces ?? archive.pieces,
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
      const storage = content.storage?.progress
      const read = listing.bytes + (content.database?.dumpedBytes ?? 0) + (storage?.bytes ?? 0)
      const what = [
        ...(content.database ? [`the database (${formatBytes(content.database.dumpedBytes)} of SQL)`] : []),
        ...(listing.files > 0 || (!content.database && !storage) ? [`${formatBytes(listing.bytes)} in ${listing.files} files`] : []),
        ...(storage ? [`${formatBytes(storage.bytes)} in ${storage.objects} Storage objects`] : [])
      ].join(' and ')
      core.info(
        `Archived ${what} into ${formatBytes(result.size)}${encrypted ? ' (encrypted)' : ''}, uploaded in ${result.parts} parts (${formatBytes(read / Math.max((Date.now() - uploadStart) / 1000, 0.001))}/s).`
      )
      return result
    } finally {
      clearInterval(ticker)
    }
  })
  return { upload, archive, plaintext: encrypted?.plaintext(), uploadMs: Date.now() - uploadStart }
}

/** For the log and the summary: to whom (or to what) the archive is encrypted. */
function describeSealing(sealing: Sealing): string {
  return sealing.kind === 'passphrase'
    ? `to a passphrase (scrypt, work factor ${SCRYPT_WORK_FACTOR})`
    : `to ${sealing.recipients.length} ${sealing.recipients.length === 1 ? 'recipient' : 'recipients'}: ${sealing.recipients.map(recipient => recipient.text).join(', ')}`
}

function logProgress(archive: Archive, content: ArchiveContent, uploadStart: number, bytesUploaded: number): void {
  const { bytesRead, filesRead } = archive.progress
  const listing = content.files
  const rate = bytesRead / Math.max((Date.now() - uploadStart) / 1000, 0.001)
  const database = content.database ? `dumped ${formatBytes(content.database.dumpedBytes)} of the database, ` : ''
  const storage = content.storage
    ? `read ${content.storage.progress.objects} Storage objects (${formatBytes(content.storage.progress.bytes)}), `
    : ''
  const files =
    listing.files > 0
      ? `read ${formatBytes(bytesRead)} of ${formatBytes(listing.bytes)} (${filesRead} of ${listing.files} files, ${formatBytes(rate)}/s), `
      : ''
  core.info(`${capitalized(`${database}${files}${storage}uploaded ${formatBytes(bytesUploaded)}.`)}`)
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** What the upload sends for the store to check, by `verify`: nothing with none, whose stores may refuse checksums. */
function uploadIntegrity(inputs: BackupInputs): UploadIntegrity {
  const checked = inputs.verify !== 'none'
  return { checksums: checked, md5: checked, plainHttp: !usesTls(inputs) }
}

async function verifyUpload(
  { inputs, state, signal }: ClaimedRun,
  { client, key }: Destination,
  upload: UploadResult,
  plaintext: Plaintext | undefined
): Promise<VerificationReport> {
  state.save({ phase: 'verifying', uploadId: '' })
  const report = await verifyUploaded(
    client,
    inputs.bucket,
    key,
    { ...upload.expected, sha256: upload.sha256, encrypted: plaintext !== undefined },
    inputs.verify,
    MAIN_RETRY,
    signal
  )
  if (report.storeChecksumMissing) core.info('The store keeps no CRC32 checksum of the object (it ignores S3 additional checksums).')
  core.info(report.summary)
  core.setOutput(Output.SizeBytes, String(upload.size))
  core.setOutput(Output.Sha256, upload.sha256)
  if (plaintext) core.setOutput(Output.PlaintextSha256, plaintext.sha256)
  return report
}

/** Marks the row success with the verified object, and tells the user: an annotation, the outputs, the job summary. */
async function recordSuccess(
  run: ClaimedRun,
  { key, where }: Destination,
  upload: UploadResult,
  report: VerificationReport,
  read: {
    files: number
    bytesRead: number
    uploadMs: number
    database: DatabaseManifest | undefined
    storage: StorageResult | undefined
    plaintext: Plaintext | undefined
    notes: string[]
  }
): Promise<void> {
  const { ledger, row, state, inputs } = run
  state.save({ phase: 'recording' })
  const written = await ledger.finalize(row.id, { status: 'success', s3Key: key, sizeBytes: upload.size, sha256: upload.sha256 })
  state.save({ phase: 'finalized', finalStatus: written.row.status })
  core.setOutput(Output.Status, written.row.status)
  if (read.storage) core.setOutput(Output.StorageObjects, String(read.storage.objects))
  await writeSummary('Backup', {
    status: written.row.status,
    dispatchId: run.dispatchId,
    rowId: row.id,
    location: where,
    sizeBytes: upload.size,
    sha256: upload.sha256,
    verification: report.checks,
    files: read.files,
    bytesRead: read.bytesRead,
    format: inputs.format,
    encryption: inputs.encryption ? `age, ${describeSealing(inputs.encryption)}` : undefined,
    plaintextSha256: read.plaintext?.sha256,
    durationMs: Date.now() - run.startedAt,
    uploadMs: read.uploadMs,
    database: read.database ? describeDatabase(read.database) : undefined,
    storage: read.storage ? describeStorage(read.storage) : undefined,
    notes: read.notes
  })
  if (written.row.status !== 'success') {
    throw new Error(
      `${where} was uploaded and verified, but the row was already marked ${written.row.status} by another writer: ${written.row.error_text ?? ''}`
    )
  }
  core.notice(`${where}: ${formatBytes(upload.size)}, ${read.files} files, SHA-256 ${upload.sha256}. Row ${row.id} marked success.`, {
    title: 'Backup succeeded'
  })
}

/**
 * What main does with a failure after the claim: the row is marked failed with what happened (a
 * cancel says how far the work got), unless the object was verified: post then marks it success.
 * Returns the error to throw.
 */
async function recordError({ ledger, row, state, signal, dispatchId }: ClaimedRun, progress: Progress, caught: unknown): Promise<unknown> {
  const error = signal.aborted && !(caught instanceof InputError) ? (signal.reason as CancelledError) : caught
  // A verified object is finished work: post marks it success even if this write failed.
  if (progress.verified) return error
  const message = error instanceof CancelledError ? describeStop(state.load()) : messageOf(error)
  await recordFailure(ledger, row, message, state)
  await writeSummary('Backup failed', { status: 'failed', dispatchId, rowId: row.id, files: progress.files, reason: message })
  return new Error(message, { cause: error })
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

/** One line for the summary: what the Storage part holds. */
function describeStorage(result: StorageResult): string {
  const buckets = result.buckets.map(bucket => `${bucket.name} (${bucket.objects})`).join(', ')
  const skipped = result.skipped.length > 0 ? `, ${result.skipped.length} skipped` : ''
  return `${result.objects} objects, ${formatBytes(result.bytes)} from ${result.buckets.length} ${result.buckets.length === 1 ? 'bucket' : 'buckets'}${buckets ? `: ${buckets}` : ''}${skipped}`
}

/** One line for the summary: what the database part holds. */
function describeDatabase(manifest: DatabaseManifest): string {
  const rows = manifest.tables.reduce((sum, table) => sum + table.rows, 0)
  return `${manifest.database} on PostgreSQL ${manifest.server.version}: ${manifest.tables.length} tables, ${rows} rows (pg_dump ${manifest.client.version})`
}

function reportAlreadyFinished(row: BackupRow, state: StateStore): undefined {
  state.save({ phase: 'finalized', rowId: row.id, finalStatus: row.status })
  core.setOutput(Output.BackupId, row.id)
  core.setOutput(Output.Status, row.status)
  if (row.s3_key) core.setOutput(Output.S3Key, row.s3_key)
  if (row.size_bytes !== null) core.setOutput(Output.SizeBytes, String(row.size_bytes))
  core.notice(`Backup row ${row.id} is already ${row.status}${row.finished_at ? ` (finished ${row.finished_at})` : ''}; nothing to do.`, {
    title: 'Backup already finished'
  })
  return undefined
}

/**
 * Another job of this same run attempt holds the row: two legs of a matrix were given one
 * dispatch id. The row stays with the job that claimed it; this one fails, saying how to fix it.
 */
function refuseSharedRow(row: BackupRow, state: StateStore): never {
  state.save({ phase: 'finalized', rowId: row.id, ownedBy: row.workflow_run_id ?? '' })
  throw new LedgerError(
    `Another job of this run (${row.claimed_by ?? 'unknown'}) already claimed backup row ${row.id} (dispatch_id ${row.dispatch_id}); one row records one backup, so this job leaves it to that one. Give each job of a matrix its own row: 'create-row: true' with no 'dispatch-id', or a dispatch id per leg.`
  )
}

/** Double dispatch: another run holds the row. Leave it, and its object, to that run. */
function leaveToOwner(row: BackupRow, state: StateStore, inputError: BackupError | undefined): undefined {
  state.save({ phase: 'finalized', rowId: row.id, ownedBy: row.workflow_run_id ?? '' })
  core.notice(`Row ${row.id} is being backed up by run ${row.workflow_run_id}; this run leaves it, and its object, to that run.`, {
    title: 'Backup already running'
  })
  // Bad inputs still fail this step, but not the row that run is working on.
  if (inputError) throw inputError
  return undefined
}
