// The store refuses or cannot be reached: the row is marked failed with a message that says what to fix.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { it } from 'node:test'
import { PHASE, actionInputs, backupHook, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('store', { 'data/file.txt': 'content\n' })

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

const cases: [string, () => Promise<Record<string, string>>, RegExp][] = [
  [
    'the store is down',
    async () => ({ endpoint: `http://127.0.0.1:${await closedPort()}` }),
    /the store is not reachable \(ECONNREFUSED\)/
  ],
  [
    'the secret access key is wrong',
    async () => ({ 'aws-secret-access-key': 'wrong-secret-value-000000000000000000000' }),
    /secret access key is wrong. Check 'aws-secret-access-key'/
  ],
  ['the access key id is unknown', async () => ({ 'aws-access-key-id': 'AKIAUNKNOWN000000000' }), /does not know the access key id/],
  ['the bucket does not exist', async () => ({ bucket: 'no-such-bucket-here' }), /the bucket does not exist. Check 'bucket'/]
]

for (const [title, overrides, message] of cases) {
  it(`${title}: row failed with a clear message`, async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...(await overrides()) })
    })
    assert.equal(job.main.exitCode, 1)
    assert.match(errorsOf(job.main), message)
    const failed = await readRow(svc, row.id)
    assert.equal(failed.status, 'failed')
    assert.match(failed.error_text ?? '', message)
    assert.doesNotMatch(failed.error_text ?? '', /wrong-secret-value/)
    assert.equal(job.post?.exitCode, 0)
    assert.deepEqual(await svc.s3.openUploads(bucket), [])
  })
}

it('an object already at a key the user set fails the row and is not overwritten', async () => {
  const row = await insertRow(svc)
  const key = `fixed/${row.dispatchId}.zip`
  await svc.s3.putObject(bucket, key, 'someone else')
  const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key }) })
  assert.equal(job.main.exitCode, 1)
  const failed = await readRow(svc, row.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error_text ?? '', /already exists .* never overwrites/)
  assert.equal((await svc.s3.getObject(bucket, key)).toString(), 'someone else')
})

it('the store completes the upload but its answer is lost: what is at the key decides, and the row ends success', async () => {
  const row = await insertRow(svc)
  await svc.s3.faults({ mode: 'lose-answer', op: 'CompleteMultipartUpload', count: 1 })
  const job = await backupJob(svc, { workspace: workspace.dir, inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }) })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success')
  const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
  assert.equal(Number(finished.size_bytes), head.ContentLength)
})

it('the store fails HeadObject for a while after the upload completed: main retries and records success', async () => {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    // More failures than the SDK's own attempts, from the moment the upload completes.
    cancelAt: async step => {
      await step.waitForState(PHASE, 'completing')
      await svc.s3.faults({ mode: 'status', status: 500, op: 'HeadObject', count: 6 })
      return new Promise(() => {})
    }
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success')
  assert.equal((await svc.s3.headObject(bucket, finished.s3_key ?? '')).ContentLength, Number(finished.size_bytes))
})

it('the store cannot abort a failed upload: the upload id stays in the state and post aborts it', async () => {
  const row = await insertRow(svc)
  const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId })
  await svc.s3.faults({ mode: 'status', status: 500, op: ['UploadPart', 'AbortMultipartUpload'] })
  const main = await backupHook(svc, { workspace: workspace.dir, inputs })
  assert.equal(main.exitCode, 1)
  assert.equal((await readRow(svc, row.id)).status, 'failed')
  assert.equal((await svc.s3.openUploads(bucket)).length, 1, 'main could not abort it')
  await svc.clearFaults()

  const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
  assert.equal(post.exitCode, 0, post.stdout)
  assert.match(post.stdout, /Aborted the unfinished upload/)
  assert.deepEqual(await svc.s3.openUploads(bucket), [])
})
