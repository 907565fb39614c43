// Secrets are masked before anything is printed and never reach a log line, an output or error_text.
// (Every end-to-end test also checks this through backupJob; here the secrets are the wrong ones.)
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('secrets', { 'data/file.txt': 'content\n' })

it('masks every secret input first, and leaks none of them when the store refuses them', async () => {
  const row = await insertRow(svc)
  const wrong = { 'aws-secret-access-key': 'WRONG-secret-0123456789abcdefghijklmnopqrst', 'aws-session-token': 'session-TOKEN-0123456789' }
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...wrong })
  })
  assert.equal(job.main.exitCode, 1)

  for (const hook of [job.main, job.post]) {
    assert.ok(hook)
    const firstLines = hook.stdoutLines.slice(0, 4)
    for (const secret of [svc.env.SUPABASE_SERVICE_ROLE_KEY, ...Object.values(wrong)]) {
      assert.ok(firstLines.includes(`::add-mask::${secret}`), `${hook.hook} masks the secret before anything else`)
      const shown: string[] = [...hook.stdoutLines, ...hook.stderrLines].filter(line => !line.startsWith('::add-mask::'))
      assert.equal(
        shown.find(line => line.includes(secret)),
        undefined
      )
    }
  }
  const failed = await readRow(svc, row.id)
  assert.equal(failed.status, 'failed')
  for (const secret of Object.values(wrong)) assert.ok(!(failed.error_text ?? '').includes(secret))
})
