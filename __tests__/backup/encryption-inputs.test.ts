// The encryption inputs: a bad recipient or a bad combination fails the claimed row with a sentence
// naming the input, before anything is uploaded; and the secrets among them (the passphrase, the
// identity the restore takes) are masked first and never reach a log line, an output, the state or
// error_text, whether the step succeeds or fails.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { ageKeygen } from '../harness/age.js'
import {
  actionInputs,
  assertNoSecrets,
  backupJob,
  errorsOf,
  insertRow,
  readRow,
  restoreHook,
  restoreInputs,
  setUpTestFile
} from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('encryption-inputs', { 'data/file.txt': 'content\n' })
const key = await ageKeygen()
const PASSPHRASE = `passphrase-${randomUUID()}`

async function failedBackup(inputs: Record<string, string>): Promise<{ errorText: string; job: Awaited<ReturnType<typeof backupJob>> }> {
  const row = await insertRow(svc)
  const prefix = `refused/${row.dispatchId}/`
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, key: `${prefix}{timestamp}.{ext}`, ...inputs })
  })
  assert.equal(job.main.conclusion, 'failure', job.main.stdout)
  const failed = await readRow(svc, row.id)
  assert.equal(failed.status, 'failed')
  assert.deepEqual(await svc.s3.objects(bucket, prefix), [], 'nothing is uploaded')
  assertNoSecrets(svc, [job.main, job.post], [failed], [PASSPHRASE, key.identity.trim()])
  return { errorText: failed.error_text ?? '', job }
}

describe('encryption inputs', () => {
  it('a recipient that is not one fails the row, naming encrypt-to and what to pass', async () => {
    const { errorText } = await failedBackup({ 'encrypt-to': `${key.recipient}\nage1notarecipient` })
    assert.match(errorText, /Input 'encrypt-to': 'age1notarecipient' is not an age recipient: one is age1 followed by 58 letters/)
  })

  it('an SSH key, or an identity pasted where its recipient belongs, is refused with what to do', async () => {
    const ssh = await failedBackup({ 'encrypt-to': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3Z8 me@laptop' })
    assert.match(ssh.errorText, /is an SSH public key; the action encrypts to age X25519 recipients only/)
    const identity = key.identity.split('\n').find(line => line.startsWith('AGE-SECRET-KEY-')) ?? ''
    const pasted = await failedBackup({ 'encrypt-to': identity })
    assert.match(pasted.errorText, /holds an age identity .* which is secret: never put it in a workflow/)
    assert.ok(!pasted.errorText.includes(identity), 'the identity is not echoed')
  })

  it('recipients and a passphrase together fail the row, naming encrypt-passphrase, and leak no passphrase', async () => {
    const { errorText, job } = await failedBackup({ 'encrypt-to': key.recipient, 'encrypt-passphrase': PASSPHRASE })
    assert.match(errorText, /Input 'encrypt-passphrase': cannot be combined with 'encrypt-to'/)
    const lines = job.main.stdoutLines.filter(line => !line.startsWith('::debug::'))
    const masked = lines.indexOf(`::add-mask::${PASSPHRASE}`)
    assert.ok(
      masked >= 0 && lines.slice(0, masked).every(line => line.startsWith('::add-mask::')),
      'the passphrase is masked before anything else'
    )
  })

  it('a short passphrase is refused without being shown', async () => {
    const { errorText } = await failedBackup({ 'encrypt-passphrase': 'hunter2' })
    assert.match(errorText, /Input 'encrypt-passphrase': is 7 characters long; use at least 12/)
    assert.ok(!errorText.includes('hunter2'))
  })

  it('a passphrase backup and an identity restore leak neither secret, when they work and when they fail', async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, 'encrypt-passphrase': PASSPHRASE })
    })
    assert.equal(job.main.conclusion, 'success', job.main.stdout)
    assertNoSecrets(svc, [job.main, job.post], [await readRow(svc, row.id)], [PASSPHRASE])

    const identityLine = key.identity.split('\n').find(line => line.startsWith('AGE-SECRET-KEY-')) ?? ''
    const into = (): string => path.join(os.tmpdir(), `encryption-inputs-${randomUUID()}`)
    const wrong = await restoreHook(
      svc,
      restoreInputs(svc, bucket, { 'backup-id': row.id, path: into(), 'decrypt-identity': key.identity })
    )
    assert.equal(wrong.conclusion, 'failure')
    assert.match(errorsOf(wrong), /is encrypted with a passphrase: set 'decrypt-passphrase'/)
    // Each line of a multi-line identity is masked on its own: the runner masks a secret only where it appears whole.
    assert.ok(wrong.stdoutLines.includes(`::add-mask::${identityLine}`))
    const right = await restoreHook(
      svc,
      restoreInputs(svc, bucket, { 'backup-id': row.id, path: into(), 'decrypt-passphrase': PASSPHRASE })
    )
    assert.equal(right.conclusion, 'success', right.stdout)
    const mistyped = await restoreHook(
      svc,
      restoreInputs(svc, bucket, { 'backup-id': row.id, path: into(), 'decrypt-passphrase': `${PASSPHRASE}x` })
    )
    assert.match(errorsOf(mistyped), /'decrypt-passphrase' does not open/)
    assertNoSecrets(svc, [wrong, right, mistyped], [], [PASSPHRASE, `${PASSPHRASE}x`, identityLine])
  })
})
