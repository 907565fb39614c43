// main SIGKILLed (worker lost after the cancel budget, OOM) at each phase: post alone, from the
// saved state, leaves the row terminal, success only for a complete and verified object. Both backends.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { LEDGER_MODES, PHASE, actionInputs, backupHook, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'
import type { RestFault, S3Fault } from '../harness/services.js'

const MiB = 1024 * 1024
const { svc, workspace } = await setUpTestFile('sigkill', { 'data/big.bin': { size: 24 * MiB }, 'data/small.txt': 'small\n' })

interface KillCase {
  phase: string
  /** Holds main in that phase so the kill lands there. */
  hold: { rest?: RestFault; s3?: S3Fault; afterPhase?: string }
  expect: 'success' | 'failed'
  message?: RegExp
}

const cases: KillCase[] = [
  {
    phase: 'locating',
    hold: { rest: { mode: 'hang', methods: ['GET'] } },
    expect: 'failed',
    message: /stopped without finalizing the backup .* while looking up the backup row/
  },
  {
    phase: 'claimed',
    hold: { s3: { mode: 'hang', op: 'HeadObject' } },
    expect: 'failed',
    message: /while preparing the archive, before the upload started/
  },
  {
    phase: 'uploading',
    hold: { s3: { mode: 'slow', op: 'UploadPart', bytesPerSec: 4 * MiB } },
    expect: 'failed',
    message: /while uploading, after .* the partial upload was aborted/
  },
  { phase: 'recording', hold: { afterPhase: 'uploading', rest: { mode: 'hang', methods: ['PATCH'] } }, expect: 'success' }
]

for (const mode of LEDGER_MODES) {
  // A bucket per backend: the tests check that no upload is left open.
  const bucket = await svc.newBucket(`sigkill-${mode}`)

  for (const killCase of cases) {
    it(`${mode}: main killed while ${killCase.phase}: post marks the row ${killCase.expect}`, async () => {
      const row = await insertRow(svc)
      const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }, mode)
      const { rest, s3, afterPhase } = killCase.hold
      if (s3) await svc.s3.faults(s3)
      if (rest && !afterPhase) await svc.rest.faults(rest)
      const main = await backupHook(svc, {
        workspace: workspace.dir,
        inputs,
        killAt: async step => {
          if (afterPhase && rest) {
            await step.waitForState(PHASE, afterPhase)
            await svc.rest.faults(rest)
          }
          await step.waitForState(PHASE, killCase.phase)
        }
      })
      assert.equal(main.signal, 'SIGKILL')
      await svc.clearFaults()

      const post = await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
      const finished = await readRow(svc, row.id)
      assert.equal(finished.status, killCase.expect, finished.error_text ?? '')
      assert.ok(finished.finished_at)
      if (killCase.expect === 'success') {
        assert.equal(post.exitCode, 0, post.stdout)
        const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
        assert.equal(Number(finished.size_bytes), head.ContentLength)
      } else {
        // The step that finalizes a failed backup fails too: errors are never swallowed.
        assert.equal(post.exitCode, 1)
        assert.match(finished.error_text ?? '', killCase.message ?? /./)
      }
      assert.deepEqual(await svc.s3.openUploads(bucket), [])
    })
  }

  it(`${mode}: main killed while completing the upload: post never reports success for an object it cannot verify`, async () => {
    const row = await insertRow(svc)
    const inputs = actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key: `completing/${row.dispatchId}.zip` })
    await svc.s3.faults({ mode: 'hang', op: 'CompleteMultipartUpload' })
    const main = await backupHook(svc, { workspace: workspace.dir, inputs, killAt: step => step.waitForState(PHASE, 'completing') })
    assert.equal(main.signal, 'SIGKILL')
    await svc.clearFaults()
    await backupHook(svc, { workspace: workspace.dir, inputs, hook: 'post', state: main.state })
    const finished = await readRow(svc, row.id)
    assert.notEqual(finished.status, 'in_progress')
    const objects = await svc.s3.objects(bucket, 'completing/')
    if (finished.status === 'success') {
      assert.equal(objects[0]?.size, Number(finished.size_bytes))
    } else {
      assert.match(finished.error_text ?? '', /while completing the upload/)
    }
  })
}
