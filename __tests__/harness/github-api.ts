// A local stand-in for the part of the GitHub REST API the sweep reads:
// GET /repos/{owner}/{repo}/actions/runs/{run_id} -> the run's status and conclusion.
// Like api.github.com it answers 401 "Bad credentials" without a valid token and 404 for a run
// (or repository) it does not know.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RunInfo {
  status: 'queued' | 'in_progress' | 'waiting' | 'completed'
  conclusion?: 'success' | 'failure' | 'cancelled' | 'timed_out' | null
}

export interface GithubApiStandIn {
  /** Base URL, for GITHUB_API_URL. */
  url: string
  /** The one token it accepts. */
  token: string
  repository: string
  /** Runs of `repository` by id; edit freely between requests. */
  runs: Map<string, RunInfo>
  /** Paths requested so far. */
  requests: string[]
  /** Answer every request with this HTTP status instead (e.g. 502), until set back to undefined. */
  failWith: number | undefined
  close(): Promise<void>
}

export async function startGithubApi(
  repository = 'octo-org/octo-repo',
  token = 'ghs_standInToken0000000000000000000000'
): Promise<GithubApiStandIn> {
  const api: GithubApiStandIn = {
    url: '',
    token,
    repository,
    runs: new Map(),
    requests: [],
    failWith: undefined,
    close: () => new Promise(resolve => server.close(() => resolve()))
  }
  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
    res.end(JSON.stringify(body))
  }
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    api.requests.push(path)
    const docs = 'https://docs.github.com/rest'
    if (api.failWith !== undefined) return send(res, api.failWith, { message: 'Server Error' })
    const auth = req.headers.authorization ?? ''
    if (auth !== `token ${token}` && auth !== `Bearer ${token}`) {
      return send(res, 401, { message: 'Bad credentials', documentation_url: docs, status: '401' })
    }
    const match = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)$/.exec(path)
    const run = match && match[1] === repository ? api.runs.get(match[2] ?? '') : undefined
    if (req.method !== 'GET' || !match || !run) return send(res, 404, { message: 'Not Found', documentation_url: docs, status: '404' })
    send(res, 200, {
      id: Number(match[2]),
      status: run.status,
      conclusion: run.status === 'completed' ? (run.conclusion ?? 'failure') : null,
      html_url: `https://github.com/${repository}/actions/runs/${match[2]}`
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return api
}
