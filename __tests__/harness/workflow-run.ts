// A workflow run as GitHub runs the reusable workflow: the backup job (the steps before the action,
// then the action's main and post) and the finalizer job, which `needs:` the backup job and runs
// `if: always()` with `backup-job-result: ${{ needs.backup.result }}`. The backup job can meet the
// fates a real run meets around the action's step: a step before it fails, the run is cancelled
// while queued (no runner ever takes the job), the action's step is skipped, or the runner is lost
// (the job's processes vanish, no post runs). The finalizer job runs in every case, as on GitHub.
import { spawnSync } from 'node:child_process'
import { ACTION_DIR, sweepHook } from './backup-job.js'
import type { GithubApiStandIn } from './github-api.js'
import { runJob, type HookResult, type JobResult, type StepControls, type Trigger } from './runner.js'
import type { Services } from './services.js'

/** What happens to the backup job. */
export type BackupJobFate =
  /** Its steps run; `controls` may cancel main, time it out or kill it (then post still runs). */
  | { kind: 'runs'; controls?: StepControls }
  /** A step before the action's (checkout, a build, a dump) fails: the action's step is skipped. */
  | { kind: 'step-fails-before'; command: string }
  /** The run is cancelled before a runner takes the job: no step of it ever runs. */
  | { kind: 'queued-cancelled' }
  /** The action's step has an `if:` that is false: the job succeeds without it. */
  | { kind: 'action-skipped' }
  /** The runner is lost at `at` (while main runs): its processes vanish, no post runs. */
  | { kind: 'runner-lost'; at: Trigger }

/** `needs.backup.result`, as GitHub gives it to the jobs that need the backup job. */
export type NeedsResult = 'success' | 'failure' | 'cancelled' | 'skipped'

export interface WorkflowRunOptions {
  svc: Services
  api: GithubApiStandIn
  workspace: string
  /** The action step's `with:`. */
  inputs: Record<string, string>
  /** The finalizer step's `with:` besides dispatch-id and backup-job-result (its Supabase access, the store). */
  finalizerInputs: Record<string, string>
  runId: string
  fate: BackupJobFate
}

export interface WorkflowRunResult {
  /** The steps before the action's, with how each ended. */
  stepsBefore: { command: string; exitCode: number | null }[]
  /** The action's step (main, and post when it ran); null when the step never ran. */
  action: JobResult | null
  backupJobResult: NeedsResult
  finalizer: HookResult
}

/** Runs the backup job to its fate, then the finalizer job, and reports the run to the GitHub stand-in as completed. */
export async function runBackupWorkflow(options: WorkflowRunOptions): Promise<WorkflowRunResult> {
  const { svc, api, workspace, inputs, runId, fate } = options
  api.runs.set(runId, { status: 'in_progress' })
  const stepsBefore: WorkflowRunResult['stepsBefore'] = []
  let action: JobResult | null = null
  let backupJobResult: NeedsResult

  const github = { runId, job: 'backup' }
  switch (fate.kind) {
    case 'queued-cancelled':
      backupJobResult = 'cancelled'
      break
    case 'action-skipped':
      backupJobResult = 'success'
      break
    case 'step-fails-before': {
      const step = spawnSync('bash', ['-c', fate.command], { cwd: workspace, stdio: 'ignore' })
      stepsBefore.push({ command: fate.command, exitCode: step.status })
      backupJobResult = 'failure'
      break
    }
    case 'runner-lost':
      action = await runJob({ actionDir: ACTION_DIR, workspace, inputs, github, killAt: fate.at })
      // GitHub fails a job whose runner stopped answering.
      backupJobResult = 'failure'
      break
    case 'runs': {
      action = await runJob({ actionDir: ACTION_DIR, workspace, inputs, github, ...fate.controls })
      const conclusions = [action.main.conclusion, action.post?.conclusion ?? 'success']
      backupJobResult = conclusions.includes('cancelled') ? 'cancelled' : conclusions.includes('failure') ? 'failure' : 'success'
      break
    }
  }

  // `needs: backup` with `if: always()`: it runs whatever became of the backup job, even after a cancel.
  const finalizer = await sweepHook(
    svc,
    api,
    { ...options.finalizerInputs, 'dispatch-id': inputs['dispatch-id'] ?? '', 'backup-job-result': backupJobResult },
    { github: { runId, job: 'finalize' } }
  )
  api.runs.set(runId, {
    status: 'completed',
    conclusion: backupJobResult === 'cancelled' ? 'cancelled' : backupJobResult === 'failure' ? 'failure' : 'success'
  })
  return { stepsBefore, action, backupJobResult, finalizer }
}
