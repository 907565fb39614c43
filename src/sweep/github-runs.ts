import { getOctokit } from '@actions/github'

/** A request to the GitHub API that has not answered in this time counts as failed. */
const REQUEST_TIMEOUT_MS = 10_000

export interface WorkflowRun {
  /** queued, in_progress, waiting, requested, pending or completed. */
  status: string
  /** success, failure, cancelled, timed_out... once completed. */
  conclusion: string | null
}

/** Reads workflow runs of one repository; GITHUB_API_URL (GitHub Enterprise Server) is honoured. */
export class WorkflowRuns {
  private readonly octokit: ReturnType<typeof getOctokit>

  constructor(
    token: string,
    private readonly repository: { owner: string; repo: string }
  ) {
    this.octokit = getOctokit(token)
  }

  /** The run, or undefined when the repository has no run with this id. Throws when GitHub cannot answer. */
  async get(runId: string): Promise<WorkflowRun | undefined> {
    try {
      const { data } = await this.octokit.rest.actions.getWorkflowRun({
        ...this.repository,
        run_id: Number(runId),
        request: { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
      })
      return { status: data.status ?? 'unknown', conclusion: data.conclusion }
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined
      const status = (error as { status?: number }).status
      const hint = status === 401 || status === 403 ? " Check 'github-token': it needs the actions: read permission on the repository." : ''
      throw new Error(
        `GitHub could not tell the state of run ${runId}: ${error instanceof Error ? error.message : String(error)}.${hint}`,
        {
          cause: error
        }
      )
    }
  }
}
