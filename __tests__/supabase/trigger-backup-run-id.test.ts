// trigger-backup asks GitHub for the run it starts (`return_run_details`) and writes that run's id
// on the row as it dispatches, so the sweep judges the row by its run from the first minute and the
// backup run claims a row that already names it. A GitHub Enterprise Server that refuses the
// parameter gets one plain dispatch; no other refusal is retried.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, beforeEach, describe, it } from 'node:test'
import { startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import { actionInputs, backupJob, createLedgerTable, LEDGER_MODES, readRow, setUpTestFile, sweepHook } from '../harness/backup-job.js'
import { withFunction } from '../harness/edge-functions.js'
import { startGithubApi } from '../harness/github-api.js'

const { svc, bucket, workspace } = await setUpTestFile('trigger-run', { 'data/file.txt': 'content\n' })
const github = await startGithubApi('octo-org/octo-repo', `ghp_${randomBytes(18).toString('hex')}`)
const ENV: FunctionEnv = {
  SUPABASE_URL: svc.env.SUPABASE_URL,
  SUPABASE_SERVICE_ROLE_KEY: svc.env.SUPABASE_SERVICE_ROLE_KEY,
  BACKUP_API_KEY: svc.env.BACKUP_API_KEY,
  GITHUB_TOKEN: github.token,
  GITHUB_REPOSITORY: github.repository,
  BACKUP_WORKFLOW: 'backup.yml',
  GITHUB_API_URL: github.url,
  GITHUB_TIMEOUT_MS: '2000'
}
const secrets = [github.token, svc.env.BACKUP_API_KEY, svc.env.SUPABASE_SERVICE_ROLE_KEY]
let logText = ''
const logs = new PassThrough().on('data', (chunk: Buffer) => (logText += chunk.toString('utf8')))
const fn = await startFunction('trigger-backup', ENV, logs)
const FUNCTION_URL = `http://127.0.0.1:${fn.port}/trigger-backup`
/** The sweep lists every in_progress row of its table: this one holds only the rows of the sweep's test. */
const table = await createLedgerTable(svc, 'backup_history_trigger_run')

after(async () => {
  await fn.stop()
  await github.close()
})
beforeEach(() => {
  github.runDetails = 'return'
  github.workflows = new Map([['backup.yml', { inputs: ['dispatch_id'] }]])
  github.dispatches.length = 0
  logText = ''
})

interface Started {
  backup_id: string
  dispatch_id: string
  workflow_run_id: string | null
  html_url: string | null
  error?: string
}

/** One call with BACKUP_API_KEY, as a script makes it; no answer may carry a secret. */
async function trigger(url = FUNCTION_URL): Promise<{ status: number; body: Started }> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${svc.env.BACKUP_API_KEY}` } })
  const text = await response.text()
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked in the answer: ${text}`)
  return { status: response.status, body: JSON.parse(text) as Started }
}

/** The function's log reaches this process through a pipe, a moment after its answer. */
async function logged(pattern: RegExp): Promise<string> {
  for (let waited = 0; !pattern.test(logText) && waited < 3000; waited += 50) await new Promise(resolve => setTimeout(resolve, 50))
  assert.match(logText, pattern)
  for (const secret of secrets) assert.ok(!logText.includes(secret), 'a secret leaked in the function log')
  return logText
}

describe('the run GitHub starts is on the row from the start', () => {
  it('asks for the run, writes its workflow_run_id on the in_progress row, and answers it with its page', async () => {
    const { status, body } = await trigger()
    assert.equal(status, 201, body.error)
    assert.equal(github.dispatches.length, 1)
    assert.deepEqual(github.dispatches[0]?.body, { ref: 'main', inputs: { dispatch_id: body.dispatch_id }, return_run_details: true })

    const [runId, run] = [...github.runs].at(-1) ?? []
    assert.deepEqual(run, { status: 'queued' }, 'the stand-in started one queued run')
    assert.equal(body.workflow_run_id, runId)
    assert.equal(body.html_url, `https://github.com/octo-org/octo-repo/actions/runs/${runId}`)
    const row = await readRow(svc, body.backup_id)
    assert.equal(row.status, 'in_progress')
    assert.equal(row.workflow_run_id, runId)
    assert.equal(row.finished_at, null)
    await logged(new RegExp(`started backup ${body.backup_id} \\(dispatch_id ${body.dispatch_id}, run ${runId}\\)`))
  })

  it('a server that ignores the parameter (204): the backup starts, the answer and the row have no run id yet', async () => {
    github.runDetails = 'ignore'
    const { status, body } = await trigger()
    assert.equal(status, 201, body.error)
    assert.equal(github.dispatches.length, 1)
    assert.equal(body.workflow_run_id, null)
    assert.equal(body.html_url, null)
    const row = await readRow(svc, body.backup_id)
    assert.equal(row.status, 'in_progress')
    assert.equal(row.workflow_run_id, null)
  })

  it('a database blip while writing the run id is retried; a database that stays away still starts the backup (201)', async () => {
    await svc.rest.faults({ mode: 'status', status: 503, methods: ['PATCH'], prefix: '/rest/v1/', count: 1 })
    const blip = await trigger()
    assert.equal(blip.status, 201, blip.body.error)
    assert.equal((await readRow(svc, blip.body.backup_id)).workflow_run_id, blip.body.workflow_run_id)

    await svc.rest.faults({ mode: 'status', status: 503, methods: ['PATCH'], prefix: '/rest/v1/' })
    const down = await trigger()
    await svc.clearFaults()
    assert.equal(down.status, 201, down.body.error)
    assert.ok(down.body.workflow_run_id, 'the answer still names the run')
    assert.equal(github.dispatches.length, 2)
    const row = await readRow(svc, down.body.backup_id)
    assert.equal(row.status, 'in_progress', 'left for the backup run to claim')
    assert.equal(row.workflow_run_id, null)
    await logged(new RegExp(`could not record run ${down.body.workflow_run_id} on backup ${down.body.backup_id}: .*database`))
  })
})

describe('a server that refuses return_run_details', () => {
  for (const refusal of [422, 400] as const) {
    it(`${refusal} naming the parameter (GitHub Enterprise Server): one plain dispatch more, the row waits for the claim, the log says so`, async () => {
      github.runDetails = refusal
      const { status, body } = await trigger()
      assert.equal(status, 201, body.error)
      assert.deepEqual(
        github.dispatches.map(dispatch => dispatch.body),
        [
          { ref: 'main', inputs: { dispatch_id: body.dispatch_id }, return_run_details: true },
          { ref: 'main', inputs: { dispatch_id: body.dispatch_id } }
        ]
      )
      assert.equal(body.workflow_run_id, null)
      assert.equal(body.html_url, null)
      const row = await readRow(svc, body.backup_id)
      assert.equal(row.status, 'in_progress')
      assert.equal(row.workflow_run_id, null)
      await logged(new RegExp(`refused the return_run_details parameter \\(HTTP ${refusal}\\).*dispatching without it`))
    })
  }

  it('a 422 for another reason (an input the workflow lacks) is not retried: one dispatch, the row failed with it', async () => {
    github.workflows.set('backup.yml', { inputs: [] })
    const { status, body } = await trigger()
    assert.equal(status, 502)
    assert.equal(github.dispatches.length, 1)
    const row = await readRow(svc, body.backup_id)
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /\(422 Unprocessable Entity\): Unexpected inputs provided: \["dispatch_id"\]/)
    await logged(/failed: GitHub refused the workflow dispatch/)
    assert.doesNotMatch(logText, /return_run_details/)
  })

  it('a dispatch that times out is not sent again (GitHub may have started the run)', async () => {
    github.hang = true
    try {
      const { status } = await trigger()
      assert.equal(status, 502)
      assert.equal(github.dispatches.length, 1)
    } finally {
      github.hang = false
    }
  })
})

describe('the sweep judges the row by its run from the first minute', () => {
  it('right after the dispatch: a run GitHub reports completed fails its row at once, a queued one keeps it', async () => {
    const [cancelled, failing, queued] = await withFunction('trigger-backup', { ...ENV, BACKUP_TABLE: table }, async url => [
      (await trigger(url)).body,
      (await trigger(url)).body,
      (await trigger(url)).body
    ])
    // The job was cancelled while queued, or failed before the action's step; the last still waits for a runner.
    github.runs.set(cancelled?.workflow_run_id ?? '', { status: 'completed', conclusion: 'cancelled' })
    github.runs.set(failing?.workflow_run_id ?? '', { status: 'completed', conclusion: 'failure' })

    const sweep = await sweepHook(svc, github, { table })
    assert.equal(sweep.exitCode, 0, sweep.stdout)
    for (const [started, conclusion] of [
      [cancelled, 'cancelled'],
      [failing, 'failure']
    ] as const) {
      const row = await readRow(svc, started?.backup_id ?? '', table)
      assert.equal(row.status, 'failed', `${conclusion}: ${row.error_text}`)
      assert.match(row.error_text ?? '', new RegExp(`^Run ${started?.workflow_run_id} ended ${conclusion} without finalizing the backup`))
      assert.equal(row.workflow_run_id, started?.workflow_run_id)
    }
    assert.equal((await readRow(svc, queued?.backup_id ?? '', table)).status, 'in_progress')
    assert.match(sweep.summary, new RegExp(`run ${queued?.workflow_run_id} is queued`))
  })
})

describe('the backup run claims the row that names it', () => {
  for (const mode of LEDGER_MODES) {
    it(`a run with the GITHUB_RUN_ID trigger-backup stored claims the row and finishes it (${mode})`, async () => {
      const { body } = await trigger()
      assert.ok(body.workflow_run_id)
      const job = await backupJob(svc, {
        workspace: workspace.dir,
        inputs: actionInputs(svc, bucket, { 'dispatch-id': body.dispatch_id, key: `claimed/${body.dispatch_id}.zip` }, mode),
        github: { runId: body.workflow_run_id }
      })
      assert.equal(job.main.exitCode, 0, job.main.stdout)
      const row = await readRow(svc, body.backup_id)
      assert.equal(row.status, 'success', row.error_text ?? '')
      assert.equal(row.workflow_run_id, body.workflow_run_id)
      assert.equal(row.s3_key, `claimed/${body.dispatch_id}.zip`)
    })
  }

  it('a run with another id leaves the row to the run GitHub named', async () => {
    const { body } = await trigger()
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': body.dispatch_id, key: `other/${body.dispatch_id}.zip` }),
      github: { runId: '424242' }
    })
    const row = await readRow(svc, body.backup_id)
    assert.equal(row.status, 'in_progress', job.main.stdout)
    assert.equal(row.workflow_run_id, body.workflow_run_id)
    assert.deepEqual(await svc.s3.objects(bucket, 'other/'), [])
  })
})
