import * as core from '@actions/core'
import type { S3Client } from '@aws-sdk/client-s3'
import { LedgerError, messageOf } from '../errors.js'
import { isTransient, Ledger, type BackupRow, type SuccessSource } from '../ledger/ledger.js'
import { ledgerBackend } from '../ledger/open.js'
import { retry, type RetryPolicy } from '../retry.js'
import type { RunContext } from '../runner/context.js'
import type { InputReader } from '../runner/inputs.js'
import { maskSecretInputs } from '../runner/secrets.js'
import { createS3Client, deleteObject, isTransientStoreError, listKeys, objectUrl } from '../store/s3.js'
import { parsePruneInputs, SECRET_INPUTS, type InputName, type PruneInputs } from './inputs.js'
import { describePolicy, describeReason, RetentionWalk } from './policy.js'

const PRUNE_RETRY: RetryPolicy = { budgetMs: 30_000, initialDelayMs: 1_000, maxDelayMs: 8_000 }
/** Rows read per request: the rows are walked a page at a time, however many there are. */
export const PAGE_SIZE = 200
/** Rows the job summary lists one by one (GitHub takes 1 MiB of summary); the log lists every one. */
const SUMMARY_ROWS = 2_000

export const PruneOutput = {
  Kept: 'kept',
  Expired: 'expired',
  ExpiredIds: 'expired-ids'
} as const

/** What the prune decided for one success row of the prefix, and what came of it. */
interface Decision {
  row: BackupRow
  time: Date
  /** keep: the policy keeps it; expire: it falls out; expired-earlier: an earlier prune marked it. */
  verdict: 'keep' | 'expire' | 'expired-earlier'
  why: string
  /** What was done (set once acted on, or when there was nothing to do). */
  result?: string
  /** This prune marked the row expired (in a dry run: would have). */
  marked?: boolean
}

/**
 * The prune: applies a restic-style policy to the success rows of one key prefix and, for each row
 * that falls out of it, records on the row that its object is gone, then deletes the object.
 *
 * Order of operations: the row is marked expired first (one conditional update), then the object
 * is deleted. A failure in between leaves a row that says expired while its object may still exist:
 * harmless (the app hides the row; nothing points at a missing object), and the next prune sees
 * the object still listed and deletes it. The reverse order could leave a row that says success
 * for an object that is gone, which is what this action exists to prevent. An object whose row
 * was not marked is never deleted.
 */
export async function runPrune(read: InputReader<InputName>, context: RunContext): Promise<void> {
  maskSecretInputs(read, SECRET_INPUTS)
  const inputs = parsePruneInputs(read)
  const backend = ledgerBackend(inputs)
  const ledger = new Ledger(backend, inputs.table, { runId: context.runId }, PRUNE_RETRY, core.info)
  const client = createS3Client(inputs.store)
  const where = objectUrl(inputs.store.bucket, inputs.prefix)
  core.info(`Pruning the success rows under ${where} with ${describePolicy(inputs.policy)}${inputs.dryRun ? ' (dry run)' : ''}.`)

  // Listed before anything is written: store credentials that cannot list cannot delete either.
  const stored = await listKeys(client, inputs.store.bucket, inputs.prefix, PRUNE_RETRY)
  core.info(`${stored.size} object(s) under ${where}.`)

  const walk = new RetentionWalk(inputs.policy)
  const decisions: Decision[] = []
  let stopped: string | undefined
  for await (const row of successRows(backend, inputs.prefix)) {
    const decision = decide(row, walk, stored)
    decisions.push(decision)
    core.info(`Row ${row.id} (${row.s3_key}, ${decision.time.toISOString()}): ${decision.verdict}: ${decision.why}`)
    if (stopped) {
      if (decision.verdict !== 'keep') decision.result = `not done: the prune stopped at an earlier failure (${stopped})`
      continue
    }
    const failure = await act(decision, inputs, ledger, client, stored)
    if (failure) {
      stopped = failure
      core.error(`Row ${row.id}: ${decision.result}`)
    }
  }

  const kept = decisions.filter(d => d.verdict === 'keep')
  const expired = decisions.filter(d => d.marked)
  core.setOutput(PruneOutput.Kept, String(kept.length))
  core.setOutput(PruneOutput.Expired, String(expired.length))
  core.setOutput(PruneOutput.ExpiredIds, JSON.stringify(expired.map(d => d.row.id)))
  await writePruneSummary(decisions, inputs)
  if (stopped) {
    throw new Error(
      `The prune stopped at a failure: ${stopped} Every row marked expired says so; an object left behind is deleted by the next prune.`
    )
  }
}

/** The prefix's success rows, newest first, a page at a time; rows finishing meanwhile are left to the next prune. */
async function* successRows(source: SuccessSource, prefix: string): AsyncGenerator<BackupRow> {
  let finishedNotAfter: string | undefined
  for (let offset = 0; ; offset += PAGE_SIZE) {
    const page = await retry(() => source.listSuccess({ prefix, limit: PAGE_SIZE, offset, finishedNotAfter }), isTransient, PRUNE_RETRY)
    const first = page[0]
    if (first && !('expired_at' in first)) {
      throw new LedgerError(
        "The table has no column expired_at. Apply supabase/migrations/011_add_expired_at_to_backup_history.sql (and redeploy the update-backup function with 'backup-api-key') before pruning."
      )
    }
    finishedNotAfter ??= first?.finished_at ?? undefined
    // LIKE narrows the rows; the prefix itself decides.
    for (const row of page) if (row.s3_key?.startsWith(prefix)) yield row
    if (page.length < PAGE_SIZE) return
  }
}

/** The backup's time: finished_at, stamped by the database's clock when the object was verified (migration 010). */
function timeOf(row: BackupRow): Date {
  return new Date(row.finished_at ?? row.created_at)
}

function decide(row: BackupRow, walk: RetentionWalk, stored: Set<string>): Decision {
  const time = timeOf(row)
  const present = stored.has(row.s3_key ?? '')
  if (row.expired_at) {
    return {
      row,
      time,
      verdict: 'expired-earlier',
      why: `marked expired at ${row.expired_at}`,
      ...(present ? {} : { result: 'nothing to do: its object is gone' })
    }
  }
  const reasons = walk.decide(time)
  if (reasons.length === 0) return { row, time, verdict: 'expire', why: 'no rule keeps it' }
  const why = reasons.map(describeReason).join(', ')
  if (present) return { row, time, verdict: 'keep', why, result: 'kept' }
  core.warning(`Row ${row.id} is kept (${why}), but its object ${row.s3_key} is not in the store: the row points at nothing.`)
  return { row, time, verdict: 'keep', why, result: 'kept, but its object is missing from the store' }
}

/** Carries out one decision; the failure's message when it failed (and the prune must stop), else undefined. */
async function act(
  decision: Decision,
  inputs: PruneInputs,
  ledger: Ledger,
  client: S3Client,
  stored: Set<string>
): Promise<string | undefined> {
  if (decision.result !== undefined) return undefined
  const { row } = decision
  const key = row.s3_key ?? ''
  if (inputs.dryRun) {
    decision.marked = decision.verdict === 'expire'
    decision.result = decision.marked ? 'would be marked expired and its object deleted (dry run)' : 'its object would be deleted (dry run)'
    return undefined
  }
  let marked = decision.verdict === 'expired-earlier' ? 'its object was still there' : ''
  if (decision.verdict === 'expire') {
    try {
      const result = await ledger.markExpired(row)
      if (!result.expired && (result.row.status !== 'success' || !result.row.expired_at)) {
        decision.result = `left: the row is ${result.row.status} and was not marked, so its object is kept`
        return undefined
      }
      marked = result.expired ? 'marked expired' : 'marked expired meanwhile by another prune'
      decision.marked = result.expired
    } catch (error) {
      decision.result = `not marked, object kept: ${messageOf(error)}`
      return messageOf(error)
    }
  }
  // Only now, with the row saying so, may the object go.
  try {
    await retry(() => deleteObject(client, inputs.store.bucket, key), isTransientStoreError, PRUNE_RETRY)
    stored.delete(key)
    decision.result = `${marked}; object deleted`
    return undefined
  } catch (error) {
    decision.result = `${marked}; object NOT deleted (the next prune retries): ${messageOf(error)}`
    return messageOf(error)
  }
}

async function writePruneSummary(decisions: Decision[], inputs: PruneInputs): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const where = objectUrl(inputs.store.bucket, inputs.prefix)
  const summary = core.summary.addHeading(`Backup prune of ${where}${inputs.dryRun ? ' (dry run)' : ''}`, 3)
  summary.addRaw(`Policy: ${describePolicy(inputs.policy)}; the newest backup is always kept. Time: finished_at (UTC).`, true)
  const count = (verdict: Decision['verdict']) => decisions.filter(d => d.verdict === verdict).length
  summary.addRaw(
    `${decisions.length} success row(s): ${count('keep')} kept, ${count('expire')} expired${inputs.dryRun ? ' (would be)' : ''}, ${count('expired-earlier')} expired earlier.`,
    true
  )
  if (decisions.length > 0) {
    const header = ['Row', 'Finished', 'Key', 'Decision', 'Why', 'Result'].map(data => ({ data, header: true }))
    const lines = decisions
      .slice(0, SUMMARY_ROWS)
      .map(d => [d.row.id, d.time.toISOString(), d.row.s3_key ?? '', d.verdict, d.why, d.result ?? ''])
    summary.addTable([header, ...lines])
    if (decisions.length > SUMMARY_ROWS) summary.addRaw(`And ${decisions.length - SUMMARY_ROWS} older row(s): see the log.`, true)
  }
  try {
    await summary.write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${messageOf(error)}`)
  }
}
