import * as core from '@actions/core'
import type { RunContext } from '../runner/context.js'
import { messageOf } from '../errors.js'
import { WorkflowRuns, type WorkflowRun } from './github-runs.js'
import { parseFinalizerDespiteProblems, SECRET_INPUTS, type InputName, type JobResult, type SweepInputs } from './inputs.js'
import type { InputReader } from '../runner/inputs.js'
import { isTransient, Ledger, type BackupRow } from '../ledger/ledger.js'
import { ledgerBackend } from '../ledger/open.js'
import type { S3Client } from '@aws-sdk/client-s3'
import { retry, type RetryPolicy } from '../retry.js'
import type { StoreLocation } from '../store/inputs.js'
import { abortUploadRetrying, createS3Client, headObject, isTransientStoreError, objectUrl, openUploads } from '../store/s3.js'
import { maskSecretInputs } from '../runner/secrets.js'

const SWEEP_RETRY: RetryPolicy = { budgetMs: 30_000, initialDelayMs: 1_000, maxDelayMs: 8_000 }
/** Rows looked at per sweep, oldest first; a backlog larger than this is worked off by the next sweeps. */
const MAX_ROWS = 500

export const SweepOutput = {
  Swept: 'swept',
  Kept: 'kept',
  SweptIds: 'swept-ids'
} as const

/** What the sweep decided for one in_progress row, and why. */
interface Verdict {
  row: BackupRow
  fail: boolean
  reason: string
  /** What happened when the row was written (set unless kept or dry run). */
  result?: string
}

/**
 * The sweep: fails the rows whose post step never ran (runner lost, worker killed) or could not
 * reach the database. A row whose run GitHub reports completed is failed at once; a row no run
 * can be shown to hold is failed once it is older than max-age; a row whose run is still going
 * is left to it. As a backup run's finalizer job (`dispatch-id`), it judges that run's one row
 * once its backup job has ended. One writer either way: the ledger's conditional update.
 */
export async function runSweep(read: InputReader<InputName>, context: RunContext): Promise<void> {
  maskSecretInputs(read, SECRET_INPUTS)
  const { inputs, refusal } = parseFinalizerDespiteProblems(read)
  if (refusal) core.error(`${refusal.message} The row is finalized anyway; then this step fails.`)
  const backend = ledgerBackend(inputs)
  const ledger = new Ledger(backend, inputs.table, { runId: context.runId }, SWEEP_RETRY, core.info)
  const rows = await rowsToJudge(inputs, backend, ledger)

  const now = new Date()
  const judgeByRun = judgeWith(inputs, now)
  const { scope } = inputs
  const judge = scope.kind === 'dispatch' ? judgeAfterBackupJob(scope.backupJobResult, context.runId, judgeByRun) : judgeByRun
  const verdicts: Verdict[] = []
  for (const row of rows) verdicts.push(await judge(row))

  const uploads = inputs.store ? new LeftUploads(inputs.store) : undefined
  let writeErrors = 0
  for (const verdict of verdicts.filter(v => v.fail)) {
    if (inputs.dryRun) {
      verdict.result = 'would be marked failed (dry run)'
      continue
    }
    try {
      if (uploads && verdict.row.upload_key) verdict.reason += ` ${await uploads.abort(verdict.row.upload_key)}`
      const written = await ledger.failAbandoned(verdict.row, verdict.reason)
      if (written.written) verdict.result = 'marked failed'
      else if (written.row.status !== 'in_progress') verdict.result = `left: finished meanwhile (${written.row.status})`
      else verdict.result = `left: claimed meanwhile by run ${written.row.workflow_run_id}`
    } catch (error) {
      writeErrors += 1
      verdict.result = `not written: ${messageOf(error)}`
      core.error(`Could not mark row ${verdict.row.id} failed: ${messageOf(error)}`)
    }
  }

  const swept = verdicts.filter(v => v.result === 'marked failed' || (inputs.dryRun && v.fail))
  for (const verdict of verdicts) core.info(`Row ${verdict.row.id}: ${verdict.result ?? 'kept'}: ${verdict.reason}`)
  core.setOutput(SweepOutput.Swept, String(swept.length))
  core.setOutput(SweepOutput.Kept, String(verdicts.filter(v => !v.fail).length))
  core.setOutput(SweepOutput.SweptIds, JSON.stringify(swept.map(v => v.row.id)))
  await writeSweepSummary(verdicts, inputs, now)
  if (writeErrors > 0) throw new Error(`${writeErrors} row(s) could not be marked failed; see the errors above.`)
  if (refusal) throw refusal
}

/** The unfinished uploads a lost runner left: aborted, as its post step would have, before the row is failed. */
class LeftUploads {
  private readonly client: S3Client
  constructor(private readonly store: StoreLocation) {
    this.client = createS3Client(store)
  }

  /** A sentence for error_text: what was left at the key and what became of it. */
  async abort(key: string): Promise<string> {
    const where = objectUrl(this.store.bucket, key)
    try {
      const open = await retry(() => openUploads(this.client, this.store.bucket, key), isTransientStoreError, SWEEP_RETRY)
      for (const upload of open) await abortUploadRetrying(this.client, this.store.bucket, key, upload.uploadId, SWEEP_RETRY)
      if (open.length > 0) {
        core.info(`Aborted ${open.length} unfinished upload(s) of ${where}.`)
        return `Its unfinished upload to ${where} was aborted.`
      }
      const stored = await retry(() => headObject(this.client, this.store.bucket, key), isTransientStoreError, SWEEP_RETRY)
      return stored
        ? `Its upload to ${where} completed, but the object was never verified nor recorded: check it by hand, or delete it.`
        : `It had started uploading to ${where}; nothing was left there.`
    } catch (error) {
      core.warning(`Could not abort the unfinished upload of ${where}: ${messageOf(error)}`)
      return `Its upload to ${where} may be left unfinished (${messageOf(error)}): abort it by hand, or let a lifecycle rule that aborts incomplete multipart uploads remove it.`
    }
  }
}

/** The in_progress rows of the table (a schedule), or the one row of the dispatch id (a finalizer job). */
async function rowsToJudge(inputs: SweepInputs, backend: ReturnType<typeof ledgerBackend>, ledger: Ledger): Promise<BackupRow[]> {
  if (inputs.scope.kind === 'dispatch') {
    const { dispatchId } = inputs.scope
    const row = await ledger.find(dispatchId)
    if (!row) core.notice(`No ${inputs.table} row has dispatch_id ${dispatchId}: nothing to finalize.`)
    else if (row.status !== 'in_progress') core.info(`Row ${row.id} is ${row.status}: the backup job finalized it.`)
    return row?.status === 'in_progress' ? [row] : []
  }
  const rows = await retry(() => backend.listInProgress(MAX_ROWS), isTransient, SWEEP_RETRY)
  core.info(`${rows.length} ${inputs.table} row(s) in_progress.`)
  if (rows.length === MAX_ROWS) core.warning(`Only the oldest ${MAX_ROWS} in_progress rows were looked at; the next sweep continues.`)
  return rows
}

/**
 * The finalizer's judgement: this job runs after the backup job of its own run has ended
 * (`needs:` it, `if: always()`), so a row that run holds, or that no run claimed yet, can no
 * longer be finalized by anyone: it is failed now, saying how the job ended. A row another run
 * holds (the dispatch id was dispatched twice) is judged as the schedule would.
 */
function judgeAfterBackupJob(
  result: JobResult,
  runId: string,
  judgeByRun: (row: BackupRow) => Promise<Verdict>
): (row: BackupRow) => Promise<Verdict> {
  return async row => {
    if (row.workflow_run_id !== null && row.workflow_run_id !== runId) return judgeByRun(row)
    const claimed = row.claimed_by !== undefined ? row.claimed_by !== null : row.workflow_run_id !== null
    const how =
      result === 'success'
        ? 'ended success, but the backup step did not finalize the row (was it skipped by an if: condition, or allowed to fail with continue-on-error?)'
        : result === 'skipped'
          ? 'was skipped (a job it needs failed, or its if: condition was false)'
          : `ended ${result}`
    const reason = claimed
      ? `The backup job ${how} without finalizing the backup: its runner was lost, or its post step could not reach the database. An archive it may have uploaded is not recorded. Marked failed by the finalizer job of run ${runId}.`
      : `The backup job ${how} before the backup step ran (see that job's steps). Nothing was uploaded. Marked failed by the finalizer job of run ${runId}.`
    return { row, fail: true, reason }
  }
}

/** Decides each row; asks GitHub about each run once. */
function judgeWith(inputs: SweepInputs, now: Date): (row: BackupRow) => Promise<Verdict> {
  const runs = inputs.githubToken ? new WorkflowRuns(inputs.githubToken, inputs.repository) : undefined
  if (!runs) core.warning("No 'github-token': runs cannot be checked, so only rows older than max-age are failed.")
  const asked = new Map<string, Promise<WorkflowRun | undefined>>()
  const repository = `${inputs.repository.owner}/${inputs.repository.repo}`

  return async row => {
    const runId = row.workflow_run_id
    let unknownRun = ''
    if (runId && /^\d+$/.test(runId) && runs) {
      if (!asked.has(runId)) asked.set(runId, runs.get(runId))
      try {
        const run = await asked.get(runId)
        if (run?.status === 'completed') {
          return {
            row,
            fail: true,
            reason: `Run ${runId} ended ${run.conclusion ?? 'without a conclusion'} without finalizing the backup: its runner was lost or its post step could not reach the database. An archive it may have uploaded is not recorded. Marked failed by the sweep.`
          }
        }
        if (run) return { row, fail: false, reason: `run ${runId} is ${run.status}` }
        unknownRun = ` Run ${runId} is not a run of ${repository}.`
      } catch (error) {
        core.warning(messageOf(error))
        unknownRun = ` GitHub could not tell the state of run ${runId}.`
      }
    }
    const ageMs = now.getTime() - Date.parse(row.created_at)
    if (ageMs > inputs.maxAgeMs) {
      return {
        row,
        fail: true,
        reason: `No run finalized this backup within ${formatDuration(inputs.maxAgeMs)} (it is ${formatDuration(ageMs)} old${runId ? `, claimed by run ${runId}` : ', never claimed'}).${unknownRun} Marked failed as abandoned by the sweep.`
      }
    }
    return {
      row,
      fail: false,
      reason: `${formatDuration(ageMs)} old, younger than max-age ${formatDuration(inputs.maxAgeMs)}.${unknownRun}`
    }
  }
}

/** The largest unit and the next: 2d 3h, 7h 0m, 5m 12s, 12s. */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000]
  ]
  const rounded = Math.max(0, Math.floor(ms / 1_000)) * 1_000
  const found = units.findIndex(([, size]) => rounded >= size)
  const [major, minor] = units.slice(found === -1 ? units.length - 1 : found)
  if (!major) return '0s'
  const text = `${Math.floor(rounded / major[1])}${major[0]}`
  return minor ? `${text} ${Math.floor((rounded % major[1]) / minor[1])}${minor[0]}` : text
}

async function writeSweepSummary(verdicts: Verdict[], inputs: SweepInputs, now: Date): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const header = ['Row', 'Dispatch id', 'Run', 'Age', 'Result', 'Reason'].map(data => ({ data, header: true }))
  const lines = verdicts.map(v => [
    v.row.id,
    v.row.dispatch_id ?? '',
    v.row.workflow_run_id ?? '',
    formatDuration(now.getTime() - Date.parse(v.row.created_at)),
    v.result ?? 'kept',
    v.reason
  ])
  const { scope } = inputs
  const title = scope.kind === 'dispatch' ? `Backup finalizer for dispatch ${scope.dispatchId}` : `Backup sweep of ${inputs.table}`
  const summary = core.summary.addHeading(`${title}${inputs.dryRun ? ' (dry run)' : ''}`, 3)
  if (verdicts.length === 0)
    summary.addRaw(scope.kind === 'dispatch' ? 'The backup job finalized its row: nothing to do.' : 'No row is in_progress.', true)
  else summary.addTable([header, ...lines])
  try {
    await summary.write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${messageOf(error)}`)
  }
}
