// Bad inputs, one table: each case fails the step with an error naming the input; the row is failed
// with that message when it can be identified and left untouched when it cannot; no other row and
// nothing in the store is touched.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { signJwt } from '../../scripts/test-services/jwt.js'
import { actionInputs, backupJob, createLedgerTable, errorsOf, insertRow, readRow, rowCount, setUpTestFile } from '../harness/backup-job.js'
import type { Services } from '../harness/services.js'

const { svc, bucket, workspace } = await setUpTestFile('inputs', { 'data/file.txt': 'content\n' })

// A table the anon key may read but not update (RLS: a select policy, no update policy).
const readOnly = await createLedgerTable(svc, 'backup_history_read_only')
await svc.sql(`alter table public.${readOnly} enable row level security`)
await svc.sql(`drop policy if exists "anon reads" on public.${readOnly}`)
await svc.sql(`create policy "anon reads" on public.${readOnly} for select to anon using (true)`)
// A table from before migration 008: no finished_at.
const noFinishedAt = await createLedgerTable(svc, 'backup_history_no_finished_at')
await svc.sql(`alter table public.${noFinishedAt} drop column if exists finished_at cascade`)

interface Case {
  title: string
  /** Inputs over the valid ones; gets the row's dispatch id and id. */
  inputs: (row: { dispatchId: string; id: string }, svc: Services) => Record<string, string>
  /** The step's error, which names the input (or the table). */
  message: RegExp
  /** 'failed': the row is identified and failed with the message; 'untouched': it cannot be, and is not written. */
  row: 'failed' | 'untouched'
  table?: string
}

const huge = 'x'.repeat(20_000)
const cases: Case[] = [
  // Identifying the row: without it nothing may be written.
  {
    title: 'dispatch-id missing',
    inputs: () => ({ 'dispatch-id': '' }),
    message: /Input 'dispatch-id': is required.*never falls back/,
    row: 'untouched'
  },
  {
    title: 'dispatch-id malformed',
    inputs: () => ({ 'dispatch-id': 'run-12345' }),
    message: /Input 'dispatch-id': must be a UUID/,
    row: 'untouched'
  },
  {
    title: 'dispatch-id is a run id',
    inputs: () => ({ 'dispatch-id': '9000000001' }),
    message: /Input 'dispatch-id': must be a UUID/,
    row: 'untouched'
  },
  {
    title: "dispatch-id is another column's UUID (the row id)",
    inputs: row => ({ 'dispatch-id': row.id }),
    message: /No backup_history row has dispatch_id [0-9a-f-]{36}/,
    row: 'untouched'
  },
  {
    title: 'dispatch-id in unicode',
    inputs: () => ({ 'dispatch-id': 'ünï-cødé-😀' }),
    message: /Input 'dispatch-id': must be a UUID like .*, got 'ünï-cødé-😀'/,
    row: 'untouched'
  },
  {
    title: 'dispatch-id huge',
    inputs: () => ({ 'dispatch-id': huge }),
    message: /Input 'dispatch-id': must be a UUID like .*, got 'x{77}\.\.\.'\./,
    row: 'untouched'
  },
  { title: 'supabase-url missing', inputs: () => ({ 'supabase-url': '' }), message: /Input 'supabase-url': is required/, row: 'untouched' },
  {
    title: 'supabase-url not a URL',
    inputs: () => ({ 'supabase-url': 'abcd.supabase.co' }),
    message: /Input 'supabase-url': must be an http\(s\) URL/,
    row: 'untouched'
  },
  { title: 'supabase-key missing', inputs: () => ({ 'supabase-key': '' }), message: /Input 'supabase-key': is required/, row: 'untouched' },
  {
    title: 'supabase-key of another project',
    inputs: () => ({ 'supabase-key': signJwt({ role: 'service_role' }, 'another-projects-secret') }),
    message: /Supabase rejected 'supabase-key' \(Invalid API key\)/,
    row: 'untouched'
  },
  {
    title: 'supabase-key is the anon key, which RLS keeps from the rows',
    inputs: (_, svc) => ({ 'supabase-key': svc.env.SUPABASE_ANON_KEY }),
    message: /No backup_history row has dispatch_id .*RLS/,
    row: 'untouched'
  },
  {
    title: 'row locked by RLS: readable but not updatable',
    inputs: (_, svc) => ({ 'supabase-key': svc.env.SUPABASE_ANON_KEY, table: readOnly }),
    message: /can read the row but not update it/,
    row: 'untouched',
    table: readOnly
  },
  {
    title: 'table missing',
    inputs: () => ({ table: 'backups_typo' }),
    message: /table does not exist. Apply supabase\/migrations or set 'table'/,
    row: 'untouched'
  },
  {
    title: 'table not a name',
    inputs: () => ({ table: 'backup_history; drop table x' }),
    message: /Input 'table': must be a plain table name/,
    row: 'untouched'
  },
  {
    title: 'column missing (a table without finished_at)',
    inputs: () => ({ table: noFinishedAt }),
    message: /The table 'backup_history_no_finished_at' \(input 'table'\) has no column finished_at/,
    row: 'untouched',
    table: noFinishedAt
  },
  {
    title: "create-row with the dispatch-id of the app's row, which already exists",
    inputs: () => ({ 'create-row': 'true' }),
    message: /Input 'create-row': is true, but a row with dispatch_id [0-9a-f-]{36} already exists/,
    row: 'failed'
  },
  {
    title: 'create-row not a boolean, with a dispatch-id that identifies the row',
    inputs: () => ({ 'create-row': 'yes' }),
    message: /Input 'create-row': must be true or false/,
    row: 'failed'
  },

  // The row is identified: it is failed with the message.
  { title: 'path missing', inputs: () => ({ path: '' }), message: /Input 'path': is required/, row: 'failed' },
  { title: 'path absolute', inputs: () => ({ path: '/etc/passwd' }), message: /Input 'path': '\/etc\/passwd' is absolute/, row: 'failed' },
  {
    title: 'path in the home directory',
    inputs: () => ({ path: '~/.ssh' }),
    message: /Input 'path': '~\/.ssh' is absolute/,
    row: 'failed'
  },
  { title: 'path ..', inputs: () => ({ path: '..' }), message: /Input 'path': '..' leaves the workspace/, row: 'failed' },
  {
    title: 'path leaving through ..',
    inputs: () => ({ path: 'data/../../secrets' }),
    message: /Input 'path': 'data\/..\/..\/secrets' leaves the workspace/,
    row: 'failed'
  },
  {
    title: 'path excluding an absolute path',
    inputs: () => ({ path: 'data\n!/etc' }),
    message: /Input 'path': '!\/etc' is absolute/,
    row: 'failed'
  },
  {
    title: 'path glob matching nothing',
    inputs: () => ({ path: 'nothing/**/*.db' }),
    message: /No files matched 'path' \(nothing\/\*\*\/\*\.db\)/,
    row: 'failed'
  },
  {
    title: 'path in unicode matching nothing',
    inputs: () => ({ path: 'données/é🙂' }),
    message: /No files matched 'path' \(données\/é🙂\)/,
    row: 'failed'
  },
  {
    title: 'path huge',
    inputs: () => ({ path: huge }),
    message: /Input 'path': 'x{77}\.\.\.' has a name longer than 255 bytes/,
    row: 'failed'
  },
  {
    title: 'verify unknown',
    inputs: () => ({ verify: 'md5' }),
    message: /Input 'verify': must be one of checksum, download, none, got 'md5'/,
    row: 'failed'
  },
  {
    title: 'format unknown',
    inputs: () => ({ format: 'rar' }),
    message: /Input 'format': must be one of zip, tar.gz, tar.zst, tar, got 'rar'/,
    row: 'failed'
  },
  {
    title: 'compression-level above range',
    inputs: () => ({ 'compression-level': '12' }),
    message: /Input 'compression-level': must be a whole number from 0 to 9 for format 'zip', got '12'/,
    row: 'failed'
  },
  {
    title: 'compression-level below the tar.zst range',
    inputs: () => ({ format: 'tar.zst', 'compression-level': '0' }),
    message: /Input 'compression-level': .* from 1 to 19/,
    row: 'failed'
  },
  {
    title: 'compression-level not a number',
    inputs: () => ({ 'compression-level': 'fast' }),
    message: /Input 'compression-level': must be a whole number/,
    row: 'failed'
  },
  {
    title: 'compression-level for tar',
    inputs: () => ({ format: 'tar', 'compression-level': '5' }),
    message: /Input 'compression-level': does not apply to format 'tar'/,
    row: 'failed'
  },
  {
    title: 'key with an unknown placeholder',
    inputs: () => ({ key: 'backups/{nope}.zip' }),
    message: /Input 'key': has an unknown placeholder \{nope\}/,
    row: 'failed'
  },
  {
    title: 'key with an unmatched brace',
    inputs: () => ({ key: 'backups/{yyyy.zip' }),
    message: /Input 'key': has an unmatched \{ or \}/,
    row: 'failed'
  },
  {
    title: 'key with a backslash',
    inputs: () => ({ key: 'backups\\x.zip' }),
    message: /Input 'key': must not contain control characters or backslashes/,
    row: 'failed'
  },
  {
    title: 'key with a control character',
    inputs: () => ({ key: 'backups/x\u0007.zip' }),
    message: /Input 'key': must not contain control characters/,
    row: 'failed'
  },
  {
    title: 'key starting with /',
    inputs: () => ({ key: '/backups/x.zip' }),
    message: /Input 'key': must not start with '\/'/,
    row: 'failed'
  },
  {
    title: 'key with a .. segment',
    inputs: () => ({ key: 'backups/../x.zip' }),
    message: /Input 'key': must not contain empty, '.' or '..' path segments/,
    row: 'failed'
  },
  { title: 'key huge', inputs: () => ({ key: `backups/${'k'.repeat(1_000)}.zip` }), message: /Input 'key': is too long/, row: 'failed' },
  { title: 'bucket missing', inputs: () => ({ bucket: '' }), message: /Input 'bucket': is required/, row: 'failed' },
  { title: 'bucket invalid', inputs: () => ({ bucket: 'Bad_Bucket!' }), message: /Input 'bucket': must be a bucket name/, row: 'failed' },
  {
    title: 'bucket given as a URL',
    inputs: () => ({ bucket: 's3://my-backups' }),
    message: /Input 'bucket': must be a bucket name/,
    row: 'failed'
  },
  {
    title: 'bucket in unicode',
    inputs: () => ({ bucket: 'sauvegardes-été' }),
    message: /Input 'bucket': must be a bucket name/,
    row: 'failed'
  },
  {
    title: 'endpoint not a URL',
    inputs: () => ({ endpoint: 'not a url' }),
    message: /Input 'endpoint': must be the http\(s\) URL/,
    row: 'failed'
  },
  {
    title: 'endpoint without a scheme',
    inputs: () => ({ endpoint: 'minio:9000' }),
    message: /Input 'endpoint': must be the http\(s\) URL/,
    row: 'failed'
  },
  {
    title: 'region invalid',
    inputs: () => ({ region: 'Europe (Paris)' }),
    message: /Input 'region': must be a region name/,
    row: 'failed'
  },
  {
    title: 'include-hidden-files not a boolean',
    inputs: () => ({ 'include-hidden-files': 'maybe' }),
    message: /Input 'include-hidden-files': must be true or false/,
    row: 'failed'
  },
  {
    title: 'force-path-style not a boolean',
    inputs: () => ({ 'force-path-style': 'yes' }),
    message: /Input 'force-path-style': must be true or false/,
    row: 'failed'
  },
  {
    title: 'aws-secret-access-key missing',
    inputs: () => ({ 'aws-secret-access-key': '' }),
    message: /Input 'aws-secret-access-key': is required when 'aws-access-key-id' is set/,
    row: 'failed'
  },
  {
    title: 'aws-session-token alone',
    inputs: () => ({ 'aws-access-key-id': '', 'aws-secret-access-key': '', 'aws-session-token': 'FwoGZXIvYXdzEBYaDHq1example' }),
    message: /Input 'aws-session-token': needs 'aws-access-key-id' and 'aws-secret-access-key'/,
    row: 'failed'
  },
  {
    title: 'aws-secret-access-key wrong',
    inputs: () => ({ 'aws-secret-access-key': 'wrong-secret-value-000000000000000000000' }),
    message: /secret access key is wrong. Check 'aws-secret-access-key'/,
    row: 'failed'
  },
  {
    title: 'aws-access-key-id unknown',
    inputs: () => ({ 'aws-access-key-id': 'AKIAUNKNOWN000000000' }),
    message: /does not know the access key id. Check 'aws-access-key-id'/,
    row: 'failed'
  }
]

/** A fingerprint of every row but `exceptId`, in every ledger table the matrix uses. */
async function otherRows(exceptId: string): Promise<string> {
  const prints = []
  for (const table of ['backup_history', readOnly, noFinishedAt]) {
    const [print] = await svc.sql<{ md5: string | null }>(
      `select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from public.${table} t where t.id <> $1`,
      [exceptId]
    )
    prints.push(`${table}:${print?.md5}`)
  }
  return prints.join(' ')
}

assert.ok(cases.length >= 30)
for (const badCase of cases) {
  it(`${badCase.title}: ${badCase.row === 'failed' ? 'the row is failed' : 'the row is left'} with an error naming it`, async () => {
    const table = badCase.table ?? 'backup_history'
    // The old table has no finished_at, which insertRow fills.
    const row =
      table === noFinishedAt
        ? await svc
            .sql<{ id: string; dispatch_id: string }>(
              `insert into public.${table} (dispatch_id) values (gen_random_uuid()) returning id, dispatch_id`
            )
            .then(([inserted]) => ({ id: inserted?.id ?? '', dispatchId: inserted?.dispatch_id ?? '' }))
        : await insertRow(svc, {}, table)
    const before = await otherRows(row.id)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...(badCase.table ? { table } : {}), ...badCase.inputs(row, svc) })
    })
    assert.equal(job.main.exitCode, 1, job.main.stdout)
    assert.match(errorsOf(job.main), badCase.message)
    assert.ok(errorsOf(job.main).length < 2_000, 'echoed values are clipped')

    const after = await readRow(svc, row.id, table)
    if (badCase.row === 'failed') {
      assert.equal(after.status, 'failed')
      assert.match(after.error_text ?? '', badCase.message)
      assert.equal(after.s3_key, null)
      assert.equal(job.post?.exitCode, 0, 'post finds the row finalized')
    } else {
      assert.equal(after.status, 'in_progress')
      assert.equal(after.workflow_run_id, null)
      assert.equal(after.error_text, null)
    }
    assert.equal(await otherRows(row.id), before, 'no other row was touched')
    assert.deepEqual(await svc.s3.objects(bucket), [], 'nothing was stored')
    assert.deepEqual(await svc.s3.openUploads(bucket), [], 'no upload was left open')
  })
}

it('create-row with a bad input creates no row', async () => {
  const rows = await rowCount(svc)
  const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, { 'create-row': 'true', format: '7z' }) })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /Input 'format'/)
  assert.equal(await rowCount(svc), rows)
  assert.equal(job.post?.exitCode, 0)
})

it('create-row inserts a row for a scheduled run and finalizes it', async () => {
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'create-row': 'true' }),
    github: { runId: '777' }
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const created = await readRow(svc, job.main.outputs['backup-id'] ?? '')
  assert.equal(created.status, 'success')
  assert.equal(created.dispatch_id, job.main.outputs['dispatch-id'])
  assert.equal(created.workflow_run_id, '777')
})
