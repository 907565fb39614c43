// Bad inputs: a clear error naming the input; the row is failed with it when it can be identified,
// and nothing is written when it cannot.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { signJwt } from '../scripts/services/jwt.js'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, rowCount, setUpTestFile } from './harness/backup-job.js'
import type { Services } from './harness/services.js'

const { svc, bucket, workspace } = await setUpTestFile('inputs', { 'data/file.txt': 'content\n' })

const rowFailing: [string, Record<string, string>, RegExp][] = [
  [
    'compression-level',
    { 'compression-level': '12' },
    /Input 'compression-level': must be a whole number from 0 to 9 for format 'zip', got '12'/
  ],
  ['bucket', { bucket: 'Bad_Bucket!' }, /Input 'bucket': must be a bucket name/],
  ['endpoint', { endpoint: 'not a url' }, /Input 'endpoint': must be the http\(s\) URL/],
  ['key', { key: 'backups/{nope}.zip' }, /Input 'key': has an unknown placeholder \{nope\}/],
  ['path (absolute)', { path: '/etc/passwd' }, /Input 'path': '\/etc\/passwd' is absolute/],
  ['path (outside the workspace)', { path: '../outside' }, /Input 'path': '..\/outside' leaves the workspace/],
  ['include-hidden-files', { 'include-hidden-files': 'maybe' }, /Input 'include-hidden-files': must be true or false/],
  ['aws-secret-access-key', { 'aws-secret-access-key': '' }, /Input 'aws-secret-access-key': is required when 'aws-access-key-id' is set/]
]

for (const [input, overrides, message] of rowFailing) {
  it(`a bad '${input}' fails the row with a message naming it, and uploads nothing`, async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...overrides })
    })
    assert.equal(job.main.exitCode, 1)
    assert.match(errorsOf(job.main), message)
    const failed = await readRow(svc, row.id)
    assert.equal(failed.status, 'failed')
    assert.match(failed.error_text ?? '', message)
    assert.equal(job.post?.exitCode, 0)
    assert.deepEqual(await svc.s3.objects(bucket), [])
  })
}

const untouchable: [string, (svc: Services) => Record<string, string>, RegExp][] = [
  ['supabase-url is not a URL', () => ({ 'supabase-url': 'abcd.supabase.co' }), /Input 'supabase-url': must be an http\(s\) URL/],
  ['supabase-key is missing', () => ({ 'supabase-key': '' }), /Input 'supabase-key': is required/],
  [
    'supabase-key is signed for another project',
    () => ({ 'supabase-key': signJwt({ role: 'service_role' }, 'another-projects-secret') }),
    /Supabase rejected 'supabase-key' \(Invalid API key\)/
  ],
  [
    'supabase-key is the anon key, which RLS keeps from the rows',
    svc => ({ 'supabase-key': svc.env.SUPABASE_ANON_KEY }),
    /No backup_history row has dispatch_id .*RLS/
  ],
  ['table does not exist', () => ({ table: 'backups_typo' }), /table does not exist. Apply supabase\/migrations or set 'table'/]
]

for (const [title, overrides, message] of untouchable) {
  it(`${title}: the step fails clearly and nothing is written`, async () => {
    const row = await insertRow(svc)
    const rows = await rowCount(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, format: 'bogus', ...overrides(svc) })
    })
    assert.equal(job.main.exitCode, 1)
    assert.match(errorsOf(job.main), message)
    const untouched = await readRow(svc, row.id)
    assert.equal(untouched.status, 'in_progress')
    assert.equal(untouched.workflow_run_id, null)
    assert.equal(await rowCount(svc), rows)
    assert.deepEqual(await svc.s3.objects(bucket), [])
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
