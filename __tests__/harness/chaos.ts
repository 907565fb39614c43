// Randomized fault matrix: each run draws what becomes of the backup job (a signal and the moment it
// lands, or a job-level fault: a step before the action fails, the run is cancelled while queued,
// the runner is lost), a database fault and a store fault; runs dist/main and dist/post through the
// runner emulator on the real services, then the finalizer job (the sweep with dispatch-id) as the
// reusable workflow does, and checks the contract's promises: every row terminal within the run, no
// false success, no upload left open, no secret. Every draw comes from the seed, so `--seed S`
// replays the same plans (and `--only N` one of them).
import { AbortMultipartUploadCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BackupRow } from '../../src/ledger/ledger.js'
import {
  ACTION_DIR,
  PHASE,
  actionInputs,
  assertNoSecrets,
  createLedgerTable,
  errorsOf,
  insertRow,
  readRow,
  sweepHook
} from './backup-job.js'
import { startGithubApi, type GithubApiStandIn } from './github-api.js'
import { runHook, type HookResult, type RunningStep } from './runner.js'
import { services, type Services } from './services.js'
import { makeWorkspace, SeededBytes, type Workspace } from './workspace.js'

const MiB = 1024 * 1024
const STATE_KEY = 'SUPABASE_S3_BACKUP_KEY'
const STATE_SHA256 = 'SUPABASE_S3_BACKUP_SHA256'
const PHASES = ['locating', 'claimed', 'uploading', 'completing', 'verifying', 'recording'] as const
/** The backup step's inputs the finalizer step is given too: the row's, and the store's (to abort a lost runner's upload). */
const FINALIZER_INPUTS = [
  'dispatch-id',
  'supabase-url',
  'supabase-key',
  'table',
  'bucket',
  'endpoint',
  'force-path-style',
  'aws-access-key-id',
  'aws-secret-access-key'
] as const
/** Post must finish well inside the runner's cancel budget; past this it counts as hung. */
const POST_WATCHDOG_MS = 120_000

/** What ends main: nothing, a cancel, a step timeout, a kill (post still runs), a lost runner (no post); or a job-level fault before main ever runs. */
type Signal = 'none' | 'cancel' | 'timeout' | 'kill' | 'lost' | 'step-fails-before' | 'queued-cancelled'
/** The signals under which the action's step never runs. */
const BEFORE_THE_STEP: readonly Signal[] = ['step-fails-before', 'queued-cancelled']
type Moment = { at: 'start' } | { at: 'phase'; phase: (typeof PHASES)[number] } | { at: 'bytes'; bytes: number }
type When = 'start' | 'moment'
type DbFault =
  | { kind: 'none' }
  | { kind: 'down'; when: When; forMs: number }
  | { kind: '503'; when: When; forMs: number }
  | { kind: '5xx'; when: When; forMs: number; status: number }
  | { kind: 'slow'; when: When; forMs: number; delayMs: number }
  | { kind: 'reset'; when: When; count: number }
  | { kind: 'post-down'; forMs: number }
  | { kind: 'down-through-post' }
type StoreFault =
  | { kind: 'none' }
  | { kind: 'down'; when: When; forMs: number }
  | { kind: 'part-5xx'; when: When; count: number }
  | { kind: 'slow-parts'; when: When; bytesPerSec: number }
  | { kind: 'complete-fails'; when: When; count: number }
  | { kind: 'head-fails'; when: When; count: number }
  | { kind: 'key-taken' }

export interface ChaosPlan {
  index: number
  signal: Signal
  moment: Moment
  /** For 'timeout': the step's timeout-minutes, shortened. */
  timeoutMs: number
  ladder: { intToTermMs: number; termToKillMs: number }
  db: DbFault
  store: StoreFault
  tree: 'small' | 'medium'
  format: 'zip' | 'tar' | 'tar.gz'
  /** trigger-backup stamped the run id on the row as it dispatched (else: GitHub Enterprise Server, a manual dispatch). */
  stamped: boolean
}

export interface ChaosRun {
  plan: ChaosPlan
  /** How the row ended: finalized by main or post, or failed by the finalizer job. */
  outcome: 'success' | 'failed' | 'finalized' | 'in_progress'
  violations: string[]
  /** Multipart uploads a lost runner left open that the finalizer aborted. */
  abortedByFinalizer: number
  /**
   * The run uploaded a complete archive but no step could verify and record it (runner lost, or
   * post could not reach the database), so the finalizer failed the row, naming the key.
   */
  unrecordedArchive: boolean
  durationMs: number
  /** main's, post's and the sweep's output, kept for runs with violations. */
  logs: string
}

export interface ChaosOptions {
  runs: number
  seed: number
  /** Run only these indexes of the sequence (replay). */
  only?: number[]
  log?: (line: string) => void
}

/** Draws from the seeded byte stream the workspaces use, one stream per run so a run replays alone. */
class Draw {
  private readonly bytes: SeededBytes
  private readonly word = Buffer.alloc(4)
  constructor(seed: number, index: number) {
    this.bytes = new SeededBytes((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0)
  }
  float(): number {
    return this.bytes.fill(this.word).readUInt32LE(0) / 2 ** 32
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1))
  }
  weighted<T>(choices: [T, number][]): T {
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0)
    let x = this.float() * total
    for (const [choice, weight] of choices) {
      x -= weight
      if (x < 0) return choice
    }
    return (choices[choices.length - 1] as [T, number])[0]
  }
}

export function drawPlan(seed: number, index: number): ChaosPlan {
  const d = new Draw(seed, index)
  const tree = d.weighted<ChaosPlan['tree']>([
    ['small', 1],
    ['medium', 1]
  ])
  const signal = d.weighted<Signal>([
    ['none', 3],
    ['cancel', 3],
    ['timeout', 2],
    ['kill', 1],
    ['lost', 1.5],
    ['step-fails-before', 1],
    ['queued-cancelled', 0.6]
  ])
  const moment = d.weighted<() => Moment>([
    [() => ({ at: 'start' }), 1],
    [() => ({ at: 'phase', phase: PHASES[d.int(0, PHASES.length - 1)] ?? 'uploading' }), 6],
    [() => ({ at: 'bytes', bytes: d.int(1, 12 * MiB) }), tree === 'medium' ? 3 : 0]
  ])()
  const when = (): When => (d.float() < 0.6 ? 'start' : 'moment')
  const db = d.weighted<() => DbFault>([
    [() => ({ kind: 'none' }), 7],
    [() => ({ kind: 'down', when: when(), forMs: d.int(500, 3_000) }), 1],
    [() => ({ kind: '503', when: when(), forMs: d.int(300, 3_000) }), 2],
    [
      () => ({
        kind: '5xx',
        when: when(),
        forMs: d.int(300, 3_000),
        status: d.weighted([
          [500, 1],
          [502, 1],
          [504, 1]
        ])
      }),
      2
    ],
    [() => ({ kind: 'slow', when: when(), forMs: d.int(500, 4_000), delayMs: d.int(100, 1_500) }), 2],
    [() => ({ kind: 'reset', when: when(), count: d.int(1, 3) }), 2],
    [() => ({ kind: 'post-down', forMs: d.int(500, 4_000) }), 2],
    [() => ({ kind: 'down-through-post' }), 0.3]
  ])()
  const store = d.weighted<() => StoreFault>([
    [() => ({ kind: 'none' }), 7],
    [() => ({ kind: 'down', when: when(), forMs: d.int(300, 2_500) }), 1.5],
    [() => ({ kind: 'part-5xx', when: when(), count: d.int(1, 6) }), 1.5],
    [() => ({ kind: 'slow-parts', when: when(), bytesPerSec: d.int(4, 16) * MiB }), 1.5],
    [() => ({ kind: 'complete-fails', when: when(), count: d.int(1, 6) }), 1.5],
    [() => ({ kind: 'head-fails', when: when(), count: d.int(1, 8) }), 1.5],
    [() => ({ kind: 'key-taken' }), 1]
  ])()
  return {
    index,
    signal,
    moment,
    timeoutMs: d.int(200, 3_000),
    ladder: d.weighted([
      [{ intToTermMs: 7_500, termToKillMs: 2_500 }, 1],
      [{ intToTermMs: 1_500, termToKillMs: 1_000 }, 2],
      [{ intToTermMs: 300, termToKillMs: 300 }, 1]
    ]),
    db,
    store,
    tree,
    format: d.weighted<ChaosPlan['format']>([
      ['zip', 2],
      ['tar', 2],
      ['tar.gz', 1]
    ]),
    stamped: d.float() < 0.5
  }
}

export function describePlan(plan: ChaosPlan): string {
  const moment = plan.moment.at === 'phase' ? plan.moment.phase : plan.moment.at === 'bytes' ? `${plan.moment.bytes}B` : 'start'
  const signal = plan.signal === 'timeout' ? `timeout(${plan.timeoutMs}ms)` : plan.signal
  const db = Object.entries(plan.db)
    .map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`))
    .join(',')
  const store = Object.entries(plan.store)
    .map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`))
    .join(',')
  if (BEFORE_THE_STEP.includes(plan.signal)) return `${plan.signal} ${plan.stamped ? 'stamped' : 'unstamped'}`
  return `${signal}@${moment} db[${db}] store[${store}] ${plan.tree} ${plan.format} ladder=${plan.ladder.intToTermMs}/${plan.ladder.termToKillMs} ${plan.stamped ? 'stamped' : 'unstamped'}`
}

interface Context {
  svc: Services
  api: GithubApiStandIn
  bucket: string
  table: string
  workspaces: Record<ChaosPlan['tree'], Workspace>
  runIdBase: number
}

/** Runs the plans and checks each; returns every run with its violations. */
export async function runChaos(options: ChaosOptions): Promise<ChaosRun[]> {
  const log = options.log ?? (() => {})
  const svc = await services()
  const api = await startGithubApi()
  const workspaces = {
    small: await makeWorkspace({ files: { 'data/a.txt': 'alpha\n', 'data/sub/b.json': '{"b":1}\n', 'data/c.bin': { size: 3000 } } }),
    medium: await makeWorkspace({ files: { 'data/big.bin': { size: 12 * MiB }, 'data/small.txt': 'small\n' } })
  }
  const ctx: Context = {
    svc,
    api,
    bucket: await svc.newBucket('chaos'),
    table: await createLedgerTable(svc, 'backup_history_chaos'),
    workspaces,
    // Run ids unique per invocation, so a replay never meets an earlier invocation's runs.
    runIdBase: 7_000_000_000 + (Date.now() % 1_000_000) * 1_000
  }
  const runs: ChaosRun[] = []
  try {
    const indexes = options.only ?? Array.from({ length: options.runs }, (_, i) => i)
    for (const index of indexes) {
      const plan = drawPlan(options.seed, index)
      const run = await runOne(ctx, plan)
      runs.push(run)
      const verdict = run.violations.length ? `VIOLATION: ${run.violations.join(' | ')}` : run.outcome
      log(`#${index} ${describePlan(plan)} -> ${verdict} (${(run.durationMs / 1000).toFixed(1)} s)`)
    }
  } finally {
    await svc.clearFaults().catch(() => {})
    if (!(await svc.postgres.running())) await svc.postgres.start()
    await api.close()
    await Promise.all(Object.values(workspaces).map(w => w.cleanup()))
    await svc.end()
  }
  return runs
}

async function runOne(ctx: Context, plan: ChaosPlan): Promise<ChaosRun> {
  const { svc, bucket, table } = ctx
  const startedAt = Date.now()
  const violations: string[] = []
  const runId = String(ctx.runIdBase + plan.index)
  await svc.clearFaults()
  const row = await insertRow(svc, {}, table)
  if (plan.stamped) await svc.sql(`update public.${table} set workflow_run_id = $2 where id = $1`, [row.id, runId])
  ctx.api.runs.set(runId, { status: 'in_progress' })
  const inputs = actionInputs(svc, bucket, {
    'dispatch-id': row.dispatchId,
    table,
    format: plan.format,
    ...(plan.format === 'tar' ? {} : { 'compression-level': '1' })
  })
  const takenContent = `not ours ${row.dispatchId}`
  if (plan.store.kind === 'key-taken') {
    inputs.key = `chaos/${row.dispatchId}.{ext}`
    await svc.s3.putObject(bucket, `chaos/${row.dispatchId}.${plan.format}`, takenContent)
  }
  await svc.s3.resetStats()

  // Faults that lift after a while run in the background; all are awaited before the checks.
  const lifting: Promise<unknown>[] = []
  const liftAfter = (ms: number, lift: () => Promise<unknown>): void => void lifting.push(sleep(ms).then(lift))
  const applyDb = async (fault: DbFault): Promise<void> => {
    switch (fault.kind) {
      case 'down':
      case 'post-down':
        if (fault.kind === 'down') {
          await svc.postgres.stop()
          return liftAfter(fault.forMs, () => svc.postgres.start())
        }
        await svc.rest.faults({ mode: 'status', status: 503 })
        return liftAfter(fault.forMs, () => svc.rest.faults({ mode: 'none' }))
      case '503':
      case '5xx':
        await svc.rest.faults({ mode: 'status', status: fault.kind === '503' ? 503 : fault.status })
        return liftAfter(fault.forMs, () => svc.rest.faults({ mode: 'none' }))
      case 'slow':
        await svc.rest.faults({ mode: 'slow', delayMs: fault.delayMs })
        return liftAfter(fault.forMs, () => svc.rest.faults({ mode: 'none' }))
      case 'reset':
        return svc.rest.faults({ mode: 'reset', count: fault.count })
      case 'down-through-post':
        return svc.rest.faults({ mode: 'status', status: 503 })
      case 'none':
        return
    }
  }
  const applyStore = async (fault: StoreFault): Promise<void> => {
    switch (fault.kind) {
      case 'down':
        await svc.s3.faults({ mode: 'reset' })
        return liftAfter(fault.forMs, () => svc.s3.faults({ mode: 'none' }))
      case 'part-5xx':
        return svc.s3.faults({ mode: 'status', status: 500, op: 'UploadPart', count: fault.count })
      case 'slow-parts':
        return svc.s3.faults({ mode: 'slow', op: 'UploadPart', bytesPerSec: fault.bytesPerSec })
      case 'complete-fails':
        return svc.s3.faults({ mode: 'status', status: 500, op: 'CompleteMultipartUpload', count: fault.count })
      case 'head-fails':
        return svc.s3.faults({ mode: 'status', status: 500, op: 'HeadObject', count: fault.count })
      case 'key-taken':
      case 'none':
        return
    }
  }
  const stepRuns = !BEFORE_THE_STEP.includes(plan.signal)
  if (stepRuns && 'when' in plan.store && plan.store.when === 'start') await applyStore(plan.store)
  if (stepRuns && 'when' in plan.db && plan.db.when === 'start') await applyDb(plan.db)

  const moment = (step: RunningStep): Promise<unknown> => {
    const { moment: m } = plan
    if (m.at === 'start') return Promise.resolve()
    if (m.at === 'phase') return step.waitForState(PHASE, m.phase)
    const exited = step.exited.then(() => Promise.reject(new Error('main exited first')))
    return Promise.race([svc.s3.waitForPartBytes(m.bytes, 15_000), exited])
  }
  const never = (step: RunningStep): Promise<never> =>
    new Promise((_, reject) => step.signal.addEventListener('abort', () => reject(new Error('exited')), { once: true }))
  const trigger = async (step: RunningStep): Promise<unknown> => {
    await moment(step)
    if (('when' in plan.db && plan.db.when === 'moment') || plan.db.kind === 'down-through-post') await applyDb(plan.db)
    if ('when' in plan.store && plan.store.when === 'moment') await applyStore(plan.store)
    if (plan.signal === 'none' || plan.signal === 'timeout') return never(step)
    return undefined
  }
  const common = { actionDir: ACTION_DIR, workspace: ctx.workspaces[plan.tree].dir, inputs, github: { runId }, ...plan.ladder }
  let main: HookResult | null = null
  let post: HookResult | null = null
  if (stepRuns) {
    main = await runHook({
      ...common,
      ...(plan.signal === 'kill' || plan.signal === 'lost' ? { killAt: trigger } : { cancelAt: trigger }),
      ...(plan.signal === 'timeout' ? { timeoutMs: plan.timeoutMs } : {})
    })
    if (plan.signal !== 'lost') {
      if (plan.db.kind === 'post-down') await applyDb(plan.db)
      post = await runHook({ ...common, hook: 'post', state: main.state, timeoutMs: POST_WATCHDOG_MS })
      if (post.triggers.some(t => t.kind === 'timeout' && t.status === 'fired')) violations.push('post hung past the watchdog')
    }
  }
  await Promise.all(lifting)
  await svc.clearFaults()
  if (!(await svc.postgres.running())) await svc.postgres.start()

  let finished = await readRow(svc, row.id, table)
  if (finished.status === 'in_progress' && post) {
    // Only a post that said loudly it could not write may leave the row to the finalizer.
    const loud = post.exitCode !== 0 && new RegExp(`Could not finalize backup ${row.dispatchId}`).test(errorsOf(post))
    if (!loud) violations.push(`post exited ${post.exitCode} and left the row in_progress without saying so`)
  }
  // The finalizer job (needs: backup, if: always()), as the reusable workflow runs it, whatever became of the job.
  const jobResult = backupJobResult(plan, main, post)
  const uploadsBefore = (await svc.s3.openUploads(bucket)).length
  let finalizer: HookResult | null = null
  const finalizerInputs = {
    ...Object.fromEntries(FINALIZER_INPUTS.map(name => [name, inputs[name] ?? ''])),
    'backup-job-result': jobResult
  }
  try {
    finalizer = await sweepHook(svc, ctx.api, finalizerInputs, { github: { runId, job: 'finalize' } })
    if (finalizer.exitCode !== 0) violations.push(`the finalizer exited ${finalizer.exitCode}: ${errorsOf(finalizer)}`)
  } catch (error) {
    violations.push(`finalizer: ${error instanceof Error ? error.message : String(error)}`)
  }
  ctx.api.runs.set(runId, { status: 'completed', conclusion: jobResult === 'success' ? 'success' : jobResult })
  const before = finished.status
  finished = await readRow(svc, row.id, table)
  const outcome: ChaosRun['outcome'] = before === 'in_progress' && finished.status === 'failed' ? 'finalized' : finished.status
  if (finished.status === 'in_progress') violations.push('the finalizer left the row in_progress')
  if (before !== 'in_progress' && finalizer?.outputs['swept'] !== '0') violations.push('the finalizer wrote a row the job had finalized')

  const checked = await checkPromises(ctx, plan, row.dispatchId, finished, outcome === 'finalized', main, post, takenContent)
  violations.push(...checked.problems)
  try {
    assertNoSecrets(svc, [main, post, finalizer], [finished])
  } catch (error) {
    violations.push(error instanceof Error ? error.message : String(error))
  }

  // Open multipart uploads: none may be left, a lost runner's included (the finalizer aborts those).
  const open = await svc.s3.openUploads(bucket)
  if (open.length > 0) {
    violations.push(`${open.length} multipart upload(s) left open: ${open.map(u => u.key).join(', ')}`)
    for (const upload of open) await abortOpenUpload(svc, bucket, upload.key, upload.uploadId)
  }
  const logs = violations.length
    ? [main, post, finalizer]
        .map(r =>
          r
            ? `--- ${r.hook} (exit ${r.exitCode ?? r.signal}, signals ${r.signalsSent.map(x => `${x.signal}@${x.atMs}`).join(' ')})\n${r.stdout}${r.stderr}`
            : ''
        )
        .join('\n')
    : ''
  return {
    plan,
    outcome,
    violations,
    abortedByFinalizer: Math.max(0, uploadsBefore - open.length),
    unrecordedArchive: checked.unrecordedArchive,
    durationMs: Date.now() - startedAt,
    logs
  }
}

/** success <=> the complete object we built is at the key; failures fail a step; main's output matches the row. */
async function checkPromises(
  ctx: Context,
  plan: ChaosPlan,
  dispatchId: string,
  row: BackupRow,
  finalized: boolean,
  main: HookResult | null,
  post: HookResult | null,
  takenContent: string
): Promise<{ problems: string[]; unrecordedArchive: boolean }> {
  const { svc, bucket } = ctx
  const problems: string[] = []
  let unrecordedArchive = false
  const built = main?.outputs['sha256'] || main?.state[STATE_SHA256] || ''
  const key = main?.outputs['s3-key'] || main?.state[STATE_KEY] || ''
  const stored = key ? await objectSha256(svc, bucket, key) : undefined

  if (row.status === 'success') {
    if (!row.s3_key || row.s3_key !== key) problems.push(`success with s3_key ${row.s3_key}, but main uploaded to ${key}`)
    else if (!stored) problems.push(`false success: no object at ${row.s3_key}`)
    else if (stored.size !== Number(row.size_bytes))
      problems.push(`false success: object has ${stored.size} bytes, row says ${row.size_bytes}`)
    else if (!built || stored.sha256 !== built)
      problems.push(`false success: object sha256 ${stored.sha256} is not what main built (${built})`)
    else if (row.sha256 !== built) problems.push(`success records sha256 ${row.sha256}, but the archive's is ${built}`)
  } else if (plan.store.kind === 'key-taken') {
    const taken = await svc.s3.getObject(bucket, `chaos/${dispatchId}.${plan.format}`)
    if (taken.toString() !== takenContent) problems.push('the object that was already at the key was overwritten')
  } else if (stored && built && stored.sha256 === built) {
    if (finalized && /completed, but the object was never verified nor recorded/.test(row.error_text ?? '')) unrecordedArchive = true
    else if (!/left in the store/.test(row.error_text ?? '')) {
      problems.push(`row ${row.status} but the complete archive is at ${key}, and error_text does not say it was left there`)
    }
  }

  if (!main) {
    if (row.status !== 'failed') problems.push(`the action's step never ran, but the row is ${row.status}`)
    return { problems, unrecordedArchive }
  }
  const mainOk = main.exitCode === 0 && main.conclusion === 'success'
  if (row.status !== 'success' && mainOk && (post?.exitCode ?? 0) === 0) problems.push(`row ${row.status} but no step failed`)
  if (mainOk && row.status !== 'success') problems.push(`main succeeded but the row is ${row.status}`)
  const said = main.outputs['status']
  if (said && said !== row.status) problems.push(`main's status output is ${said} but the row is ${row.status}`)
  if (row.status === 'failed' && !row.error_text) problems.push('failed without error_text')
  return { problems, unrecordedArchive }
}

/** `needs.backup.result` as GitHub reports it once the backup job is over. */
function backupJobResult(plan: ChaosPlan, main: HookResult | null, post: HookResult | null): 'success' | 'failure' | 'cancelled' {
  if (plan.signal === 'queued-cancelled') return 'cancelled'
  if (plan.signal === 'step-fails-before' || plan.signal === 'lost' || !main) return 'failure'
  const conclusions = [main.conclusion, post?.conclusion ?? 'success']
  return conclusions.includes('cancelled') ? 'cancelled' : conclusions.includes('failure') ? 'failure' : 'success'
}

async function objectSha256(svc: Services, bucket: string, key: string): Promise<{ size: number; sha256: string } | undefined> {
  try {
    const body = await svc.s3.getObject(bucket, key)
    return { size: body.length, sha256: createHash('sha256').update(body).digest('hex') }
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined
    throw error
  }
}

async function abortOpenUpload(svc: Services, bucket: string, key: string, uploadId: string): Promise<void> {
  await svc.s3.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
}

/** Per fault class: runs, how the rows ended, violations. */
export function chaosTable(runs: readonly ChaosRun[]): string {
  const classes = new Map<string, ChaosRun[]>()
  const add = (name: string, run: ChaosRun): void => void classes.set(name, [...(classes.get(name) ?? []), run])
  for (const run of runs) {
    add(`signal   ${run.plan.signal}`, run)
    add(`moment   ${run.plan.moment.at === 'phase' ? run.plan.moment.phase : run.plan.moment.at}`, run)
    add(`database ${run.plan.db.kind}`, run)
    add(`store    ${run.plan.store.kind}`, run)
    add(`row      ${run.plan.stamped ? 'stamped with the run by trigger-backup' : 'without a run id'}`, run)
  }
  const sorted = [...classes.entries()].sort(([a], [b]) => a.localeCompare(b))
  sorted.push(['all', [...runs]])
  const header = [
    'fault class',
    'runs',
    'success',
    'failed',
    'finalized',
    'violations',
    'uploads aborted by the finalizer',
    'archives not recorded (finalized)'
  ]
  const lines = sorted.map(([name, list]) => [
    name,
    String(list.length),
    String(list.filter(r => r.outcome === 'success').length),
    String(list.filter(r => r.outcome === 'failed').length),
    String(list.filter(r => r.outcome === 'finalized').length),
    String(list.filter(r => r.violations.length > 0).length),
    String(list.reduce((sum, r) => sum + r.abortedByFinalizer, 0)),
    String(list.filter(r => r.unrecordedArchive).length)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => (l[i] ?? '').length)))
  const format = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
  return [format(header), ...lines.map(format)].join('\n')
}
