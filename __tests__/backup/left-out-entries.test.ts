// What the contract lets a backup leave out (dot entries, with include-hidden-files off) is said in the log and
// the job summary; what it may not leave out (a FIFO, say) fails the row naming it, shown as bytes.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const run = promisify(execFile)
const { svc, bucket, workspace } = await setUpTestFile('leftout', {
  'data/kept.txt': 'kept\n',
  'data/.env': 'TOKEN=x\n',
  'data/.cache/blob': 'cached\n',
  'fifo/kept.txt': 'kept\n'
})
await run('sh', ['-c', `mkfifo "$(printf '${workspace.dir}/fifo/pipe-\\377')"`])

it('names the dot entries it left out, in the log and the job summary', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'data' })
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  const note = `Left out 2 dot entries that 'path' matched (data/.cache, data/.env), as 'include-hidden-files' is false.`
  assert.ok(job.main.stdout.includes(note), job.main.stdout)
  assert.ok(job.main.summary.includes(note), job.main.summary)
})

it('fails the row naming a FIFO whose name is not UTF-8, with escapes, and the line that excludes it', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'fifo' })
  })
  assert.equal(job.main.exitCode, 1)
  const message = `"fifo/pipe-\\xff" is not a regular file, directory or symlink (a socket, FIFO or device); exclude it with '!fifo/pipe-?'.`
  assert.ok(errorsOf(job.main).includes(message), errorsOf(job.main))
  const failed = await readRow(svc, row.id)
  assert.equal(failed.status, 'failed')
  assert.equal(failed.error_text, message)
})
