// Two jobs of one run (the legs of a matrix) given the same dispatch id: they share the run id and
// the attempt, so only the claim's job token (claimed_by, migration 010) tells them apart. Exactly
// one backs the row up; the other fails its step saying why, and never writes the row.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { LEDGER_MODES, actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('matrix', { 'data/file.txt': 'content\n' })

for (const mode of LEDGER_MODES) {
  it(`${mode}: two legs of one matrix on one dispatch id: one backs it up, the other is refused and leaves the row alone`, async () => {
    const row = await insertRow(svc)
    const prefix = `matrix/${row.dispatchId}`
    const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key: `${prefix}/{timestamp}-{run_attempt}.{ext}` }, mode)
    // The winner sits in its upload while the other leg looks the row up and tries to claim it.
    await svc.s3.faults({ mode: 'slow', op: 'CreateMultipartUpload', delayMs: 1_500, count: 1 })
    const legs = await Promise.all(
      [0, 1].map(() =>
        backupJob(svc, { workspace: workspace.dir, inputs, github: { runId: '5100000001', runAttempt: '1', job: 'backup' } })
      )
    )
    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success', finished.error_text ?? '')
    const winner = legs.find(leg => leg.main.outputs['status'] === 'success')
    const loser = legs.find(leg => leg !== winner)
    assert.ok(winner && loser, legs.map(leg => leg.main.stdout).join('\n----\n'))
    assert.equal(finished.s3_key, winner.main.outputs['s3-key'])
    assert.match(finished.claimed_by ?? '', /^5100000001\/1\/backup\/[0-9a-f]{8}$/)

    assert.equal(loser.main.exitCode, 1, 'the refused leg fails its step')
    assert.match(
      errorsOf(loser.main),
      /Another job of this run \(5100000001\/1\/backup\/[0-9a-f]{8}\) already claimed backup row .* its own row/
    )
    assert.equal(loser.post?.exitCode, 0, loser.post?.stdout)
    assert.equal(loser.main.outputs['s3-key'], undefined, 'the refused leg never started an upload')
    assert.deepEqual(
      (await svc.s3.objects(bucket, prefix)).map(object => object.key),
      [finished.s3_key]
    )
    assert.deepEqual(await svc.s3.openUploads(bucket, prefix), [])
  })
}

it('a re-run attempt takes over the row an earlier attempt of the run left claimed', async () => {
  const row = await insertRow(svc)
  await svc.sql(
    `update public.backup_history set workflow_run_id = '5100000002', claimed_by = '5100000002/1/backup/0badc0de' where id = $1`,
    [row.id]
  )
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    github: { runId: '5100000002', runAttempt: '2', job: 'backup' }
  })
  assert.equal(job.main.exitCode, 0, job.main.stdout)
  const finished = await readRow(svc, row.id)
  assert.equal(finished.status, 'success')
  assert.match(finished.claimed_by ?? '', /^5100000002\/2\/backup\//)
})
