// The app's side end to end (examples/trigger-backup.ts) with supabase-js, as a signed-in user:
// trigger-backup starts the backup, the app polls its row while the workflow (played here through
// update-backup) uploads the archive and finishes the row, then backup-download answers a link
// that downloads exactly that archive from the local S3 store.
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { after, describe, it } from 'node:test'
import { createClient, type SupabaseClient } from '@supabase/supabase-js'
import { backUpAndLink, downloadLink, startBackup, type Backup } from '../../examples/trigger-backup.js'
import { startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import { storeSecrets } from '../harness/edge-functions.js'
import { startGithubApi } from '../harness/github-api.js'
import { services } from '../harness/services.js'
import { functionEnvFor, userToken } from '../harness/tokens.js'

const svc = await services()
const bucket = await svc.newBucket('app')
const github = await startGithubApi('octo-org/octo-repo', `ghp_${randomBytes(18).toString('hex')}`)
const PROJECT_ENV: FunctionEnv = { ...(functionEnvFor(svc.env, 'both') as FunctionEnv), BACKUP_API_KEY: svc.env.BACKUP_API_KEY }
const trigger = await startFunction(
  'trigger-backup',
  {
    ...PROJECT_ENV,
    GITHUB_TOKEN: github.token,
    GITHUB_REPOSITORY: github.repository,
    BACKUP_WORKFLOW: 'backup.yml',
    GITHUB_API_URL: github.url
  },
  new PassThrough().resume()
)
const download = await startFunction(
  'backup-download',
  {
    ...PROJECT_ENV,
    ...storeSecrets(svc.env, bucket)
  },
  new PassThrough().resume()
)
for (const fn of [trigger, download]) await svc.rest.deployFunction(fn.name, { verifyJwt: fn.verifyJwt, port: fn.port })

after(async () => {
  await Promise.all([trigger.stop(), download.stop(), github.close()])
  await svc.end()
})

/** The app's client for a signed-in user: the publishable key, and the user's access token. */
function signedIn(): SupabaseClient {
  const token = userToken(svc.env, 'ES256')
  return createClient(svc.env.SUPABASE_URL, svc.env.SUPABASE_PUBLISHABLE_KEY, { accessToken: async () => token })
}

/** What the dispatched workflow does, once: upload the archive, then report through update-backup. */
function playTheWorkflow(archive: Buffer | undefined): (row: Backup) => void {
  let started: Promise<void> | undefined
  return row => {
    started ??= (async () => {
      const key = `backups/2026/03/14/backup-${row.dispatch_id}.zip`
      if (archive) await svc.s3.putObject(bucket, key, archive)
      const result = archive
        ? { s3_key: key, size_bytes: archive.length, sha256: createHash('sha256').update(archive).digest('hex') }
        : { status: 'failed', error_text: 'The upload failed: the store answered 403 AccessDenied. Check the bucket policy.' }
      const response = await fetch(`${svc.env.SUPABASE_URL}/functions/v1/update-backup`, {
        method: 'POST',
        headers: { authorization: `Bearer ${svc.env.BACKUP_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ dispatch_id: row.dispatch_id, workflow_run_id: row.workflow_run_id ?? '9001', ...result })
      })
      assert.equal(response.status, 200, await response.text())
    })()
  }
}

describe('the app example (examples/trigger-backup.ts): trigger, poll, download', () => {
  it('backUpAndLink: a signed-in user starts a backup, waits for it, and the link downloads exactly the archive', async () => {
    const archive = randomBytes(256 * 1024 + 3)
    const { backup, link } = await backUpAndLink(signedIn(), { intervalMs: 10, onProgress: playTheWorkflow(archive) })
    assert.equal(backup.status, 'success')
    assert.equal(link.file_name, `backup-${backup.dispatch_id}.zip`)
    assert.equal(link.size_bytes, archive.length)
    assert.ok(Date.parse(link.expires_at) > Date.now())
    const response = await fetch(link.url)
    assert.equal(response.status, 200)
    const bytes = Buffer.from(await response.arrayBuffer())
    assert.equal(createHash('sha256').update(bytes).digest('hex'), link.sha256)
    assert.ok(bytes.equals(archive))
  })

  it("backUpAndLink throws the row's error_text when the backup failed", async () => {
    await assert.rejects(
      backUpAndLink(signedIn(), { intervalMs: 10, onProgress: playTheWorkflow(undefined) }),
      /The upload failed: the store answered 403 AccessDenied/
    )
  })

  it('downloadLink throws what the function says: still in progress, or no such backup', async () => {
    const supabase = signedIn()
    const started = await startBackup(supabase)
    await assert.rejects(downloadLink(supabase, started.backup_id), /is still in progress: ask again once its status is success/)
    const missing = randomUUID()
    await assert.rejects(downloadLink(supabase, missing), new RegExp(`No backup has id ${missing}, or you may not see it`))
  })
})
