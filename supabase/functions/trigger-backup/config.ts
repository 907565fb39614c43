// The function's secrets, read per request so `supabase secrets set` applies without a redeploy.
// Every problem is a 500 that names the secret to set; nothing is written before they pass.
import { HttpError } from '../_shared/http.ts'

export interface GithubConfig {
  /** GITHUB_API_URL, default https://api.github.com (GitHub Enterprise Server: https://<host>/api/v3). */
  apiUrl: string
  /** GITHUB_TOKEN: may dispatch workflows of the repository (fine-grained: Actions read and write). */
  token: string
  /** GITHUB_REPOSITORY, "owner/repo". */
  repository: string
  /** BACKUP_WORKFLOW: the workflow's file name (backup.yml) or numeric id. */
  workflow: string
  /** BACKUP_REF: the branch or tag whose workflow file runs, default main. */
  ref: string
  /** GITHUB_TIMEOUT_MS: how long the dispatch call may take, default 10 s. */
  timeoutMs: number
}

const REPOSITORY = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/
const WORKFLOW = /^[A-Za-z0-9_.-]+$/
const DEFAULT_TIMEOUT_MS = 10_000
const MAX_TIMEOUT_MS = 60_000

export const env = (name: string): string => (Deno.env.get(name) ?? '').trim()

export function readGithubConfig(): GithubConfig {
  const token = env('GITHUB_TOKEN')
  if (!token) {
    throw misconfigured(
      "The function's GITHUB_TOKEN secret is not set: set a token that may dispatch the backup workflow (fine-grained: Actions read and write on the repository)."
    )
  }
  const repository = env('GITHUB_REPOSITORY')
  if (!REPOSITORY.test(repository)) {
    throw misconfigured(
      `The function's GITHUB_REPOSITORY secret ${repository ? 'is not' : 'is not set; set it to'} "owner/repo", the repository of the backup workflow.`
    )
  }
  const workflow = env('BACKUP_WORKFLOW')
  if (!WORKFLOW.test(workflow)) {
    throw misconfigured(
      `The function's BACKUP_WORKFLOW secret ${workflow ? 'is not a workflow file name' : 'is not set'}: set it to the workflow's file name in .github/workflows, e.g. backup.yml.`
    )
  }
  const apiUrl = (env('GITHUB_API_URL') || 'https://api.github.com').replace(/\/+$/, '')
  if (!/^https?:\/\/[^/\s]+/.test(apiUrl)) throw misconfigured('GITHUB_API_URL must be an http(s) URL, e.g. https://api.github.com.')
  const timeout = env('GITHUB_TIMEOUT_MS')
  const timeoutMs = timeout ? Number(timeout) : DEFAULT_TIMEOUT_MS
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw misconfigured(`GITHUB_TIMEOUT_MS must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}.`)
  }
  return { apiUrl, token, repository, workflow, ref: env('BACKUP_REF') || 'main', timeoutMs }
}

function misconfigured(message: string): HttpError {
  return new HttpError(500, 'misconfigured', message)
}
