import { randomUUID } from 'node:crypto'

/** What the runner tells every step about the run, read once from its environment. */
export interface RunContext {
  workspace: string
  runId: string
  runAttempt: string
  /** The job's id in the workflow (GITHUB_JOB): the same for every leg of a matrix. */
  job: string
  repository: string
}

export function runContextFromEnv(env: NodeJS.ProcessEnv = process.env): RunContext {
  return {
    workspace: env.GITHUB_WORKSPACE || process.cwd(),
    // Outside Actions (local runs) a run id still has to identify who claimed the row.
    runId: env.GITHUB_RUN_ID || `local-${randomUUID()}`,
    runAttempt: env.GITHUB_RUN_ATTEMPT || '1',
    job: env.GITHUB_JOB || 'job',
    repository: env.GITHUB_REPOSITORY || 'local/repository'
  }
}
