// A local stand-in for the part of the GitHub REST API this project calls:
// GET /repos/{owner}/{repo}/actions/runs/{run_id} -> the run's status and conclusion (the sweep);
// POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches -> 204, or with
// `return_run_details: true` 200 {workflow_run_id, run_url, html_url} naming the queued run it
// adds to `runs` (trigger-backup). Like api.github.com it answers 401 "Bad credentials" without a
// valid token, 404 for a run, workflow (or repository) it does not know, and 422 for a dispatch
// with a ref or inputs the workflow does not have; `runDetails` makes it a server that predates
// the parameter (GitHub Enterprise Server).
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RunInfo {
  status: 'queued' | 'in_progress' | 'waiting' | 'completed'
  conclusion?: 'success' | 'failure' | 'cancelled' | 'timed_out' | null
}

/** A workflow with `on: workflow_dispatch`, by file name: the inputs it declares. */
export interface WorkflowInfo {
  inputs: string[]
}

/** One accepted or refused workflow_dispatch call, as received. */
export interface DispatchRequest {
  path: string
  authorization: string | undefined
  userAgent: string | undefined
  apiVersion: string | undefined
  body: unknown
}

export interface GithubApiStandIn {
  /** Base URL, for GITHUB_API_URL. */
  url: string
  /** The one token it accepts; set another to revoke it. */
  token: string
  repository: string
  /** Runs of `repository` by id; edit freely between requests. */
  runs: Map<string, RunInfo>
  /** Dispatchable workflows of `repository` by file name (default: backup.yml with a dispatch_id input). */
  workflows: Map<string, WorkflowInfo>
  /** Branches a dispatch may name as its ref (default: main). */
  refs: Set<string>
  /** Paths requested so far. */
  requests: string[]
  /** Every workflow_dispatch call so far. */
  dispatches: DispatchRequest[]
  /** Answer every request with this HTTP status instead (e.g. 502), until set back to undefined. */
  failWith: number | undefined
  /** The `message` of those answers (default "Server Error"). */
  failMessage: string | undefined
  /** Never answer (a stalled API), until set back to false. */
  hang: boolean
  /**
   * What it does with `return_run_details: true`: 'return' the run (api.github.com), 'ignore' it (204), or
   * refuse it as an unknown body field with this status, as a GitHub Enterprise Server before it does (422).
   */
  runDetails: 'return' | 'ignore' | 400 | 422
  /** The id the next run a dispatch starts gets (then counts up). */
  nextRunId: number
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
    workflows: new Map([['backup.yml', { inputs: ['dispatch_id'] }]]),
    refs: new Set(['main']),
    requests: [],
    dispatches: [],
    failWith: undefined,
    failMessage: undefined,
    hang: false,
    runDetails: 'return',
    nextRunId: 7_100_000_001,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
  const docs = 'https://docs.github.com/rest'
  const send = (res: http.ServerResponse, status: number, body?: unknown): void => {
    if (body === undefined) return void res.writeHead(status).end()
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
    res.end(JSON.stringify(body))
  }
  const notFound = { message: 'Not Found', documentation_url: docs, status: '404' }
  const unprocessable = (message: string) => ({ message, documentation_url: docs, status: '422' })

  const runs = (res: http.ServerResponse, method: string, path: string): void => {
    const match = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)$/.exec(path)
    const run = match && match[1] === repository ? api.runs.get(match[2] ?? '') : undefined
    if (method !== 'GET' || !match || !run) return send(res, 404, notFound)
    send(res, 200, {
      id: Number(match[2]),
      status: run.status,
      conclusion: run.status === 'completed' ? (run.conclusion ?? 'failure') : null,
      html_url: `https://github.com/${repository}/actions/runs/${match[2]}`
    })
  }

  const dispatch = (res: http.ServerResponse, workflowName: string, body: unknown): void => {
    const workflow = api.workflows.get(decodeURIComponent(workflowName))
    if (!workflow) return send(res, 404, notFound)
    const {
      ref,
      inputs = {},
      return_run_details: returnRunDetails
    } = (typeof body === 'object' && body !== null ? body : {}) as {
      ref?: unknown
      inputs?: Record<string, unknown>
      return_run_details?: unknown
    }
    // An older server validates the body against its schema first, where the parameter is unknown.
    if (returnRunDetails !== undefined && typeof api.runDetails === 'number') {
      const message = 'Invalid request.\n\n"return_run_details" is not a permitted key.'
      return send(res, api.runDetails, { message, documentation_url: docs, status: String(api.runDetails) })
    }
    if (typeof ref !== 'string' || !ref) return send(res, 422, unprocessable('Invalid request.\n\n"ref" wasn\'t supplied.'))
    if (!api.refs.has(ref.replace(/^refs\/heads\//, ''))) return send(res, 422, unprocessable(`No ref found for: ${ref}`))
    const unexpected = Object.keys(inputs).filter(name => !workflow.inputs.includes(name))
    if (unexpected.length > 0) return send(res, 422, unprocessable(`Unexpected inputs provided: ${JSON.stringify(unexpected)}`))
    if (returnRunDetails !== true || api.runDetails === 'ignore') return send(res, 204)
    const runId = api.nextRunId++
    api.runs.set(String(runId), { status: 'queued' })
    send(res, 200, {
      workflow_run_id: runId,
      run_url: `${api.url}/repos/${repository}/actions/runs/${runId}`,
      html_url: `https://github.com/${repository}/actions/runs/${runId}`
    })
  }

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const method = req.method ?? 'GET'
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      api.requests.push(path)
      const dispatchPath = /^\/repos\/([^/]+\/[^/]+)\/actions\/workflows\/([^/]+)\/dispatches$/.exec(path)
      let body: unknown
      if (dispatchPath) {
        const text = Buffer.concat(chunks).toString('utf8')
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
        api.dispatches.push({
          path,
          authorization: req.headers.authorization,
          userAgent: req.headers['user-agent'],
          apiVersion: req.headers['x-github-api-version'] as string | undefined,
          body
        })
      }
      if (api.hang) return
      if (api.failWith !== undefined) return send(res, api.failWith, { message: api.failMessage ?? 'Server Error' })
      const auth = req.headers.authorization ?? ''
      if (auth !== `token ${api.token}` && auth !== `Bearer ${api.token}`) {
        return send(res, 401, { message: 'Bad credentials', documentation_url: docs, status: '401' })
      }
      if (dispatchPath && method === 'POST') {
        return dispatchPath[1] === repository ? dispatch(res, dispatchPath[2] ?? '', body) : send(res, 404, notFound)
      }
      runs(res, method, path)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return api
}
