// Whatever stops the database dump, the row ends failed with what happened, no pg_dump is left
// running and no spool is left on the runner's disk: a cancel, a killed main (post cleans up), the
// database going away halfway. A database-url that cannot work fails the row before anything is
// dumped or uploaded, with a sentence that says what to change and never the password.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { actionInputs, backupJob, errorsOf, insertRow, PHASE, readRow, setUpTestFile, type JobOptions } from '../harness/backup-job.js'
import { startCluster } from '../harness/clusters.js'
import type { JobResult } from '../harness/runner.js'
import { DUMP_PIDS, dumpingTheSchema, lockTable } from '../harness/held-dump.js'
import { createProject } from '../harness/supabase-project.js'
import { SPOOL_PREFIX } from '../../src/sources/database/source.js'

const run = promisify(execFile)
const { svc, bucket, workspace } = await setUpTestFile('db-failures', { 'data/notes.txt': 'hello\n' })
const source = await startCluster('source')
await createProject(source, 50_000)
const runnerTemp = await mkdtemp(path.join(os.tmpdir(), 'db-failures-runner-temp-'))
after(() => rm(runnerTemp, { recursive: true, force: true }))
afterEach(async () => {
  if (!(await source.running())) await source.start()
})

/** pg_dump and pg_dumpall processes of this test's source, by their command line. */
async function dumpProcesses(): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid,args'])
  return stdout.split('\n').filter(line => /pg_dump/.test(line) && line.includes(`:${source.port}/`))
}

/** What main left (a pg_dump, a spool, an open upload) is gone; post failed the row if main could not. */
async function assertCleanedUp(job: JobResult, rowFailedBy: 'main' | 'post' = 'post'): Promise<void> {
  assert.deepEqual(await dumpProcesses(), [], 'no pg_dump left running')
  const spools = (await readdir(runnerTemp)).filter(name => name.startsWith(SPOOL_PREFIX))
  assert.deepEqual(spools, [], 'no spool left in RUNNER_TEMP')
  assert.deepEqual(await svc.s3.openUploads(bucket), [], 'no multipart upload left open')
  assert.equal(job.post?.conclusion, rowFailedBy === 'post' ? 'failure' : 'success', 'post reports what it did')
}

function inputs(row: { dispatchId: string }, format: string, databaseUrl = source.url()): Record<string, string> {
  return actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', 'database-url': databaseUrl, format })
}

/**
 * A backup of the source in `format` while public.events is locked, so that its dump waits with
 * the snapshot taken until `stop` (a cancel, a kill, or something done to the server) acts.
 */
async function backUpHeldDump(
  format: string,
  stop: Pick<JobOptions, 'cancelAt' | 'killAt' | 'runPostAfterKill'>
): Promise<{ job: JobResult; row: Awaited<ReturnType<typeof readRow>> }> {
  const release = await lockTable(source, 'public.events')
  try {
    const row = await insertRow(svc)
    const job = await backupJob(svc, { workspace: workspace.dir, runnerTemp, inputs: inputs(row, format), ...stop })
    return { job, row: await readRow(svc, row.id) }
  } finally {
    await release()
  }
}

describe('stopped during the dump', () => {
  it('zip, cancelled while the dump streams: the row is failed, pg_dump stopped, the upload aborted', async () => {
    const { job, row } = await backUpHeldDump('zip', { cancelAt: step => step.waitForState(DUMP_PIDS, pids => pids !== '') })
    assert.equal(job.main.conclusion, 'cancelled')
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /^The run was cancelled \(SIGINT\) while uploading/)
    await assertCleanedUp(job, 'main')
  })

  it('tar.zst, cancelled while the dump spools: the row says so, and the spool is removed', async () => {
    const { job, row } = await backUpHeldDump('tar.zst', {
      cancelAt: async step => {
        await step.waitForState(PHASE, 'dumping')
        await step.waitForState(DUMP_PIDS, pids => pids !== '')
      }
    })
    assert.equal(job.main.conclusion, 'cancelled')
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /cancelled \(SIGINT\) while dumping the database, before anything was uploaded/)
    await assertCleanedUp(job, 'main')
  })

  it('tar.gz, main killed mid-dump: post stops the pg_dump it left, removes the spool and fails the row', async () => {
    const { job, row } = await backUpHeldDump('tar.gz', {
      killAt: step => step.waitForState(DUMP_PIDS, dumpingTheSchema),
      runPostAfterKill: true
    })
    assert.equal(job.main.signal, 'SIGKILL')
    assert.match(job.post?.stdout ?? '', /Left by main's database dump: stopped pg_dump \(pid \d+\)/)
    assert.match(job.post?.stdout ?? '', /removed the spool/)
    assert.equal(row.status, 'failed')
    assert.match(row.error_text ?? '', /stopped without finalizing the backup .* while dumping the database/)
    await assertCleanedUp(job)
  })

  for (const format of ['zip', 'tar.zst'] as const) {
    it(`${format}, the database goes away halfway: "The database dump failed: ..." and nothing left behind`, async () => {
      const { job, row } = await backUpHeldDump(format, {
        // A trigger that fires nothing itself: it takes the server down under the waiting dump.
        cancelAt: async step => {
          await step.waitForState(DUMP_PIDS, dumpingTheSchema)
          await source.stop('immediate')
          return new Promise(() => {})
        }
      })
      assert.equal(job.main.conclusion, 'failure')
      assert.equal(row.status, 'failed')
      assert.match(row.error_text ?? '', /^The database dump failed: /)
      assert.match(errorsOf(job.main), /The database dump failed: /)
      await assertCleanedUp(job, 'main')
    })
  }
})

describe('a database-url that cannot work fails the row before anything is dumped or uploaded', () => {
  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      'nothing listens there',
      async () => 'postgresql://postgres@127.0.0.1:1/postgres',
      /Could not connect to the database at 127\.0\.0\.1:1 \(input 'database-url'\) to back it up: nothing accepts connections at 127\.0\.0\.1:1 \(ECONNREFUSED\)/
    ],
    [
      'a wrong password',
      async () => {
        await source.sql(
          "do $$ begin if not exists (select from pg_roles where rolname = 'dumper') then create role dumper login password 'right-password-1'; end if; end $$"
        )
        await source.requirePassword('dumper')
        return source.url({ user: 'dumper', password: 'wrong-p@ss/word#1' })
      },
      /the server refused the password for user "dumper" \(28P01\)\. Check the password .*percent-encode/
    ],
    [
      'a database that does not exist',
      async () => source.url({ database: 'nosuchdb' }),
      /the database "nosuchdb" does not exist on that server/
    ],
    [
      'TLS demanded from a server without it',
      async () => source.url({ query: 'sslmode=require' }),
      /the server does not accept TLS, but the connection string asks for it \(sslmode=require\)/
    ],
    [
      "Supabase's transaction pooler (port 6543)",
      async () => 'postgresql://postgres.abcdefghij:secret-pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres',
      /Input 'database-url': points at Supabase's pooler in transaction mode \(port 6543\).*Session pooler/
    ],
    ['not a connection string', async () => 'mysql://root@db/app', /Input 'database-url': must start with postgresql:\/\/ /]
  ]
  for (const [title, databaseUrl, message] of cases) {
    it(title, async () => {
      const url = await databaseUrl()
      const row = await insertRow(svc)
      const before = await svc.s3.objects(bucket)
      const job = await backupJob(svc, { workspace: workspace.dir, runnerTemp, inputs: inputs(row, 'tar.gz', url) })
      assert.equal(job.main.conclusion, 'failure')
      const failed = await readRow(svc, row.id)
      assert.equal(failed.status, 'failed')
      assert.match(failed.error_text ?? '', message)
      assert.match(errorsOf(job.main), message)
      assert.deepEqual(await svc.s3.objects(bucket), before, 'nothing uploaded')
      assert.deepEqual(await svc.s3.openUploads(bucket), [])
      assert.doesNotMatch(job.main.stdout, /Dumping the database|Uploading/)
      // A password is masked first (as written in the URL, and decoded), and appears nowhere a user reads.
      const password = new URL(url).password
      const secrets = password ? [url, password, decodeURIComponent(password)] : [url]
      const shown = [
        ...job.main.stdoutLines.filter(line => !line.startsWith('::add-mask::')),
        ...job.main.stderrLines,
        failed.error_text ?? ''
      ]
      for (const secret of secrets) {
        // As the runner reads a workflow command: '%' is escaped as %25.
        assert.ok(job.main.stdoutLines.includes(`::add-mask::${secret.replaceAll('%', '%25')}`), `masks ${secret}`)
        if (password)
          assert.equal(
            shown.find(line => line.includes(secret)),
            undefined,
            `${secret} leaked`
          )
      }
    })
  }
})
