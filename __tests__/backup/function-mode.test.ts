// The action with `backup-api-key`: it reaches the rows only through the update-backup edge
// function, so the workflow holds no database key. What is particular to that mode: its input
// rules, the errors of a misdeployed function, and retries through the function. (The core's
// fault tests run in this mode too: happy-path, cancellation, sigkill, database-outage.)
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, rowCount, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('function', { 'data/file.txt': 'content\n' })
/** Where the runs that must store nothing point: it stays empty. */
const refusedBucket = await svc.newBucket('function-refused')

const run = (inputs: Record<string, string>, github = {}) =>
  backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, inputs, 'function'), github })

/** A failure that must leave the row as the app inserted it and store nothing. */
async function assertNothingWritten(row: { id: string }, rowsBefore: number): Promise<void> {
  const untouched = await readRow(svc, row.id)
  assert.equal(untouched.status, 'in_progress')
  assert.equal(untouched.workflow_run_id, null)
  assert.equal(await rowCount(svc), rowsBefore)
  assert.deepEqual(await svc.s3.objects(refusedBucket), [])
}

it('masks backup-api-key first and reports the backup with it alone', async () => {
  const row = await insertRow(svc)
  const job = await run({ 'dispatch-id': row.dispatchId }, { runId: '31337' })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.ok(job.main.stdoutLines.slice(0, 4).includes(`::add-mask::${svc.env.BACKUP_API_KEY}`))
  assert.equal(job.main.inputEnv['INPUT_SUPABASE-KEY'], '')
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success')
  assert.equal(finished.workflow_run_id, '31337')
  await svc.s3.headObject(bucket, finished.s3_key ?? '')
})

it('a wrong backup-api-key fails the step naming the input, and writes nothing', async () => {
  const row = await insertRow(svc)
  const rows = await rowCount(svc)
  const job = await run({
    'dispatch-id': row.dispatchId,
    bucket: refusedBucket,
    'backup-api-key': 'not-the-key-0123456789abcdefghijklmnop'
  })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /the function rejected 'backup-api-key' .* must equal the function's BACKUP_API_KEY secret/)
  assert.ok(!errorsOf(job.main).includes('not-the-key-0123456789abcdefghijklmnop'))
  await assertNothingWritten(row, rows)
})

// A conflict that still identifies the row and a way to reach it fails the row with the error
// (through the function, which backup-api-key asks for); one that cannot reach it writes nothing.
for (const [title, inputs, message, row] of [
  [
    'supabase-key as well',
    { 'supabase-key': 'service-role-key' },
    /Input 'supabase-key': must be empty when 'backup-api-key' is set/,
    'failed'
  ],
  ['a table', { table: 'other_table' }, /Input 'table': does not apply with 'backup-api-key'.*BACKUP_TABLE/, 'failed'],
  [
    'a bad update-function',
    { 'update-function': 'update backup' },
    /Input 'update-function': must be the name of the deployed edge function/,
    'untouched'
  ]
] as const) {
  it(`backup-api-key with ${title}: an input error; the row is ${row}`, async () => {
    const inserted = await insertRow(svc)
    const rows = await rowCount(svc)
    const job = await run({ 'dispatch-id': inserted.dispatchId, bucket: refusedBucket, ...inputs })
    assert.equal(job.main.exitCode, 1)
    assert.match(errorsOf(job.main), message)
    if (row === 'untouched') return assertNothingWritten(inserted, rows)
    const after = await readRow(svc, inserted.id)
    assert.equal(after.status, 'failed')
    assert.match(after.error_text ?? '', message)
    assert.equal(await rowCount(svc), rows)
    assert.equal(job.post?.exitCode, 0, 'post finds the row finalized')
  })
}

it('update-function without backup-api-key is refused, and the row is failed through the table key', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, 'update-function': 'backup-reporter' })
  })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /Input 'update-function': only applies with 'backup-api-key'/)
  const after = await readRow(svc, row.id)
  assert.equal(after.status, 'failed')
  assert.match(after.error_text ?? '', /Input 'update-function': only applies with 'backup-api-key'/)
})

it('a function deployed with JWT verification: the error says to deploy it with --no-verify-jwt', async () => {
  const row = await insertRow(svc)
  const rows = await rowCount(svc)
  await svc.rest.deployFunction('update-backup', { verifyJwt: true })
  try {
    const job = await run({ 'dispatch-id': row.dispatchId, bucket: refusedBucket })
    assert.equal(job.main.exitCode, 1)
    assert.match(errorsOf(job.main), /Supabase refused the request before it reached the function \(Invalid JWT\).*--no-verify-jwt/)
  } finally {
    await svc.rest.deployFunction('update-backup', { verifyJwt: false })
  }
  await assertNothingWritten(row, rows)
})

it('no function under that name: the error points at deploying it or at update-function', async () => {
  const row = await insertRow(svc)
  const job = await run({ 'dispatch-id': row.dispatchId, 'update-function': 'backup-reporter' })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), /there is no such edge function.*set 'update-function'/)
  assert.match(errorsOf(job.main), /functions\/v1\/backup-reporter/)
})

it('an unknown dispatch-id names the id and where the function looks', async () => {
  const dispatchId = randomUUID()
  const job = await run({ 'dispatch-id': dispatchId })
  assert.equal(job.main.exitCode, 1)
  assert.match(errorsOf(job.main), new RegExp(`No backup_history row has dispatch_id ${dispatchId}.*BACKUP_TABLE`))
})

it('the function failing for a moment (502/503 from the gateway) is retried, and the backup succeeds', async () => {
  const row = await insertRow(svc)
  await svc.rest.faults({ mode: 'status', status: 503, prefix: '/functions/v1/', count: 2 })
  const job = await run({ 'dispatch-id': row.dispatchId, key: `retried/${row.dispatchId}.zip` })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.match(job.main.stdout, /Database not reachable \(Could not read the row through the update-backup function .*HTTP 503/)
  assert.equal((await readRow(svc, row.id)).status, 'success')
})

it('create-row: the function inserts the row for a scheduled run, and it ends success', async () => {
  const job = await run({ 'create-row': 'true', key: 'scheduled/{dispatch_id}.zip' }, { runId: '4711' })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const created = await readRow(svc, job.main.outputs['backup-id'] ?? '')
  assert.equal(created.status, 'success')
  assert.equal(created.dispatch_id, job.main.outputs['dispatch-id'])
  assert.equal(created.workflow_run_id, '4711')
})

it('a row that is already finished is left alone: a notice, its outputs, exit 0', async () => {
  const row = await insertRow(svc, { status: 'failed' })
  const before = await readRow(svc, row.id)
  const job = await run({ 'dispatch-id': row.dispatchId })
  assert.equal(job.main.exitCode, 0)
  assert.equal(job.main.outputs.status, 'failed')
  assert.ok(job.main.commands.some(command => command.command === 'notice' && /already failed/.test(command.message)))
  assert.deepEqual(await readRow(svc, row.id), before)
})
