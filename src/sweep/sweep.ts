import * as core from '@actions/core'
import type { RunContext } from '../runner/context.js'
import { messageOf } from '../errors.js'
import { WorkflowRuns, type WorkflowRun } from './github-runs.js'
import { parseSweepInputs, SECRET_INPUTS, type InputName, type SweepInputs } from './inputs.js'
import type { InputReader } from '../runner/inputs.js'
import { isTransient, Ledger, type BackupRow } from '../ledger/ledger.js'
import { TableLedgerBackend } from '../ledger/table-backend.js'
import { retry, type RetryPolicy } from '../retry.js'
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
 * is left to it.
 */
export async function runSweep(read: InputReader<InputName>, context: RunContext): Promise<void> {
  maskSecretInputs(read, SECRET_INPUTS)
  const inputs = parseSweepInputs(read)
  const backend = new TableLedgerBackend(inputs.supabaseUrl, inputs.supabaseKey, inputs.table)
  const ledger = new Ledger(backend, inputs.table, { runId: context.runId }, SWEEP_RETRY, core.info)
  const rows = await retry(() => backend.listInProgress(MAX_ROWS), isTransient, SWEEP_RETRY)
  core.info(`${rows.length} ${inputs.table} row(s) in_progress.`)
  if (rows.length === MAX_ROWS) core.warning(`Only the oldest ${MAX_ROWS} in_progress rows were looked at; the next sweep continues.`)

  const now = new Date()
  const judge = judgeWith(inputs, now)
  const verdicts: Verdict[] = []
  for (const row of rows) verdicts.push(await judge(row))

  let writeErrors = 0
  for (const verdict of verdicts.filter(v => v.fail)) {
    if (inputs.dryRun) {
      verdict.result = 'would be marked failed (dry run)'
      continue
    }
    try {
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
  const summary = core.summary.addHeading(`Backup sweep of ${inputs.table}${inputs.dryRun ? ' (dry run)' : ''}`, 3)
  if (verdicts.length === 0) summary.addRaw('No row is in_progress.', true)
  else summary.addTable([header, ...lines])
  try {
    await summary.write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${messageOf(error)}`)
  }
}
