// What a person sees without opening the log: the job summary's table and titled annotations,
// for a backup that succeeded, one that failed, and a post step that could not finalize.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { PHASE, actionInputs, backupHook, backupJob, insertRow, setUpTestFile } from '../harness/backup-job.js'
import type { HookResult } from '../harness/runner.js'

const { svc, bucket, workspace } = await setUpTestFile('summary', { 'data/a.txt': 'a\n', 'data/b.txt': 'b\n', 'data/sub/c.txt': 'c\n' })

/** The summary's table as name -> value. */
function summaryTable(result: HookResult): Record<string, string> {
  return Object.fromEntries([...result.summary.matchAll(/<tr><th>([^<]*)<\/th><td>([^<]*)<\/td><\/tr>/g)].map(m => [m[1], m[2]]))
}

function annotation(result: HookResult, command: string): { title: string | undefined; message: string } | undefined {
  const found = result.commands.find(c => c.command === command)
  return found && { title: found.properties.title, message: found.message }
}

it('a success: status, dispatch id, key, size, sha256, files, duration, throughput and format; a titled notice', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, format: 'tar.gz' })
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const table = summaryTable(job.main)
  const size = Number(job.main.outputs['size-bytes'])
  assert.deepEqual(Object.keys(table), [
    'Status',
    'Dispatch id',
    'Row id',
    'Key',
    'Size',
    'SHA-256',
    'Verified',
    'Files',
    'Read',
    'Duration',
    'Throughput',
    'Format'
  ])
  assert.equal(table.Status, 'success')
  assert.equal(table['Dispatch id'], row.dispatchId)
  assert.equal(table.Key, `s3://${bucket}/${job.main.outputs['s3-key']}`)
  assert.equal(table.Size, `${size} B (${size} bytes)`)
  assert.equal(table['SHA-256'], job.main.outputs.sha256)
  assert.match(table.Verified ?? '', /^checksum: size \d+ bytes, ETag, CRC32$/)
  assert.equal(table.Files, '3')
  assert.match(table.Duration ?? '', /^\d+\.\d s$/)
  assert.match(table.Throughput ?? '', /^\d+(\.\d)? (B|KiB|MiB|GiB)\/s$/)
  assert.equal(table.Format, 'tar.gz')
  const notice = annotation(job.main, 'notice')
  assert.equal(notice?.title, 'Backup succeeded')
  assert.match(notice?.message ?? '', new RegExp(`s3://${bucket}/.*3 files, SHA-256 ${job.main.outputs.sha256}`))
})

it('a failure: the summary gives the reason, and the error annotation has a title', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, bucket: 'no-such-bucket-here' })
  })
  assert.equal(job.main.exitCode, 1)
  const table = summaryTable(job.main)
  assert.equal(table.Status, 'failed')
  assert.match(table.Reason ?? '', /the bucket does not exist/)
  const error = annotation(job.main, 'error')
  assert.equal(error?.title, 'Backup failed')
  assert.match(error?.message ?? '', /the bucket does not exist/)
})

it('post that cannot write the row fails with a titled annotation naming the dispatch id', async () => {
  const row = await insertRow(svc)
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId })
  await svc.s3.faults({ mode: 'hang', op: 'HeadObject' })
  const main = await backupHook(svc, { workspace: workspace.dir, inputs, killAt: step => step.waitForState(PHASE, 'claimed') })
  await svc.clearFaults()
  // The database answers, but refuses every write for good: post gives up at once, no retries.
  await svc.sql(
    `alter table public.backup_history add constraint summary_test_no_writes check (status = 'in_progress' or dispatch_id <> '${row.dispatchId}')`
  )
  try {
    const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
    assert.equal(post.exitCode, 1)
    const error = annotation(post, 'error')
    assert.equal(error?.title, 'Backup row not finalized')
    assert.match(error?.message ?? '', new RegExp(`Could not finalize backup ${row.dispatchId}`))
  } finally {
    await svc.sql('alter table public.backup_history drop constraint summary_test_no_writes')
  }
})
