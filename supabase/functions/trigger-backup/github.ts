// GitHub's workflow_dispatch REST call, bounded in time. A refusal comes back as a sentence a user
// can act on (GitHub's status and message, and which secret to check), never as an exception.
import { clip } from '../_shared/http.ts'
import type { GithubConfig } from './config.ts'

export type DispatchOutcome = { ok: true } | { ok: false; error: string }

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

/** `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` with `{ref, inputs: {dispatch_id}}`. */
export async function dispatchWorkflow(github: GithubConfig, dispatchId: string): Promise<DispatchOutcome> {
  const url = `${github.apiUrl}/repos/${github.repository}/actions/workflows/${encodeURIComponent(github.workflow)}/dispatches`
  let response: Response
  let text: string
  try {
    // The one signal bounds the answer's body too, so a server that stalls mid-answer is cut off as well.
    const signal = AbortSignal.timeout(github.timeoutMs)
    response = await fetch(url, {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${github.token}`,
        'content-type': 'application/json',
        'user-agent': 'supabase-s3-backup-trigger',
        'x-github-api-version': '2022-11-28'
      },
      body: JSON.stringify({ ref: github.ref, inputs: { dispatch_id: dispatchId } }),
      signal
    })
    text = await response.text()
  } catch (error) {
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      return {
        ok: false,
        error: `GitHub's API did not answer the workflow dispatch within ${github.timeoutMs / 1000} s (GITHUB_TIMEOUT_MS), so the backup was not started. Retry; if GitHub started the run late, it finds this backup failed and does nothing.`
      }
    }
    const reason = error instanceof Error ? error.message : String(error)
    return {
      ok: false,
      error: `Could not reach GitHub's API at ${github.apiUrl} for the workflow dispatch (${clip(reason)}); check GITHUB_API_URL.`
    }
  }
  if (response.ok) return { ok: true }
  const status = `${response.status} ${REASONS[response.status] ?? response.statusText}`.trim()
  return {
    ok: false,
    error: `GitHub refused the workflow dispatch (${status}): ${githubMessage(text)} ${hint(response.status, github)}`.trim()
  }
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
