// Parts reuse connections: S3 keeps them alive, and an upload that opened one per part would pay a
// TCP (and, against S3 itself, a TLS) handshake for every few MiB. The AWS SDK does exactly that
// for requests sent with `Expect: 100-continue`, its default for large bodies, so the action turns
// the header off; this catches an SDK upgrade or a setting that brings it back.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const MiB = 1024 * 1024
// A tar of 48 MiB is at least eight parts.
const { svc, bucket, workspace } = await setUpTestFile('connections', { 'data/big.bin': { size: 48 * MiB } })

it('uploads its parts over a few kept-alive connections, not one per part', async () => {
  const row = await insertRow(svc)
  await svc.s3.resetStats()
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, format: 'tar' })
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  assert.equal((await readRow(svc, row.id)).status, 'success')
  const stats = await svc.s3.stats()
  assert.ok(stats.parts >= 8, `${stats.parts} parts`)
  // The parts in flight at once (three), and the requests before and after them, share these.
  assert.ok(stats.connections <= 5, `${stats.connections} connections for ${stats.requests} requests (${stats.parts} parts)`)
})
