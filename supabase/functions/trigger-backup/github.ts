// GitHub's workflow_dispatch REST call, bounded in time. It asks for the run it starts
// (`return_run_details`, api.github.com since February 2026) so the row can name its run at once;
// a server that refuses that parameter gets the plain dispatch. A refusal comes back as a sentence
// a user can act on (GitHub's status and message, and which secret to check), never as an exception.
import { clip } from '../_shared/http.ts'
import type { GithubConfig } from './config.ts'

/** The run GitHub started, from its 200 answer to `return_run_details: true`. */
export interface DispatchedRun {
  /** `workflow_run_id`, as the action writes its GITHUB_RUN_ID. */
  id: string
  /** `html_url`: the run's page, when GitHub gave one. */
  htmlUrl: string | null
}

/** `run` is null when GitHub started the run without naming it: a 204, or the plain dispatch of the fallback. */
export type DispatchOutcome = { ok: true; run: DispatchedRun | null } | { ok: false; error: string }

/** What GitHub answered, or a sentence saying why nothing came back. */
type Answer = { status: number; statusText: string; text: string } | { error: string }

/** HTTP/2 answers carry no reason phrase, so the usual ones are named here. */
const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout'
}

/**
 * `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` with `{ref, inputs: {dispatch_id},
 * return_run_details: true}`; once more without `return_run_details` when the server refuses that parameter.
 */
export async function dispatchWorkflow(github: GithubConfig, dispatchId: string): Promise<DispatchOutcome> {
  const plain = { ref: github.ref, inputs: { dispatch_id: dispatchId } }
  let answer = await post(github, { ...plain, return_run_details: true })
  if (refusesRunDetails(answer)) {
    // Such a server refuses the body before it starts anything, so the second call cannot start a second run.
    // Only this refusal is retried: after a timeout GitHub may have started the run all the same.
    console.warn(
      `trigger-backup: GitHub at ${github.apiUrl} refused the return_run_details parameter (HTTP ${answer.status}), as GitHub Enterprise Server versions without it do; dispatching without it. The row gets its run id when the backup claims it.`
    )
    answer = await post(github, plain)
  }
  if ('error' in answer) return { ok: false, error: answer.error }
  if (answer.status >= 200 && answer.status < 300) return { ok: true, run: dispatchedRun(answer.text) }
  const status = `${answer.status} ${REASONS[answer.status] ?? answer.statusText}`.trim()
  return {
    ok: false,
    error: `GitHub refused the workflow dispatch (${status}): ${githubMessage(answer.text)} ${hint(answer.status, github)}`.trim()
  }
}

async function post(github: GithubConfig, body: Record<string, unknown>): Promise<Answer> {
  const url = `${github.apiUrl}/repos/${github.repository}/actions/workflows/${encodeURIComponent(github.workflow)}/dispatches`
  try {
    // The one signal bounds the answer's body too, so a server that stalls mid-answer is cut off as well.
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${github.token}`,
        'content-type': 'application/json',
        'user-agent': 'supabase-s3-backup-trigger',
        'x-github-api-version': '2022-11-28'
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(github.timeoutMs)
    })
    return { status: response.status, statusText: response.statusText, text: await response.text() }
  } catch (error) {
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      return {
        error: `GitHub's API did not answer the workflow dispatch within ${github.timeoutMs / 1000} s (GITHUB_TIMEOUT_MS), so the backup was not started. Retry; if GitHub started the run late, it finds this backup failed and does nothing.`
      }
    }
    const reason = error instanceof Error ? error.message : String(error)
    return { error: `Could not reach GitHub's API at ${github.apiUrl} for the workflow dispatch (${clip(reason)}); check GITHUB_API_URL.` }
  }
}

/**
 * A server that predates `return_run_details` refuses it as an unknown body field: GitHub Enterprise Server
 * answers 422 ("return_run_details" is not a permitted key), some versions 400. Any other refusal names
 * something else (the ref, an input) and fails the backup as it is.
 */
function refusesRunDetails(answer: Answer): answer is Extract<Answer, { status: number }> {
  return 'status' in answer && (answer.status === 400 || answer.status === 422) && answer.text.includes('return_run_details')
}

/** `{workflow_run_id, run_url, html_url}` from a 200; null from a 204, or from a body without a usable run id. */
function dispatchedRun(text: string): DispatchedRun | null {
  if (!text.trim()) return null
  let body: { workflow_run_id?: unknown; html_url?: unknown }
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    body = {}
  }
  const id = body.workflow_run_id
  if (!((typeof id === 'number' && Number.isSafeInteger(id) && id > 0) || (typeof id === 'string' && /^[1-9]\d{0,19}$/.test(id)))) {
    console.warn(
      'trigger-backup: GitHub accepted the dispatch but named no workflow_run_id; the row gets its run id when the backup claims it.'
    )
    return null
  }
  const htmlUrl = typeof body.html_url === 'string' && /^https?:\/\/\S+$/.test(body.html_url) ? body.html_url : null
  return { id: String(id), htmlUrl }
}

/** GitHub's `message` (and the first of `errors`, if any), or the start of whatever it answered. */
function githubMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; errors?: unknown }
    const first = Array.isArray(body.errors) ? body.errors[0] : undefined
    const detail =
      typeof first === 'string' ? first : typeof first === 'object' && first !== null ? (first as { message?: unknown }).message : undefined
    const message = [body.message, detail].filter(part => typeof part === 'string' && part).join(': ')
    if (message) return `${clip(message).replace(/[.\s]+$/, '')}.`
  } catch {
    // Not JSON (a proxy's HTML page): the start of it says enough.
  }
  return text.trim() ? `${clip(text)}.` : '(no message).'
}

function hint(status: number, github: GithubConfig): string {
  switch (status) {
    case 401:
      return 'Check GITHUB_TOKEN: it is invalid, expired or revoked.'
    case 403:
    case 429:
      return `Check GITHUB_TOKEN: it needs the Actions (read and write) permission on ${github.repository}, and may have hit a rate limit.`
    case 404:
      return `Check BACKUP_WORKFLOW (${github.workflow}) and GITHUB_REPOSITORY (${github.repository}): the workflow file must exist on the default branch, and GITHUB_TOKEN must have access to the repository.`
    case 422:
      return `Check that ${github.workflow} has 'on: workflow_dispatch' with a 'dispatch_id' input, and that BACKUP_REF (${github.ref}) exists.`
    default:
      return status >= 500 ? 'GitHub had a problem; retry later.' : ''
  }
}
