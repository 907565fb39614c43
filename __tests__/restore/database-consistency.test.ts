// The database part is one snapshot: writes that land while the backup runs are neither in the
// dump nor in the manifest's counts, so the restore's count check agrees with what it applied.
// A restore target that already holds tables is refused and left as it was; an archive without
// a database part is refused with why.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { startCluster } from '../harness/clusters.js'
import { DUMP_PIDS, dumpingTheSchema, lockTable } from '../harness/held-dump.js'
import { createEmptyProject, createProject, tableHashes } from '../harness/supabase-project.js'

const { svc, bucket, workspace } = await setUpTestFile('db-consistency', { 'data/notes.txt': 'hello\n' })
const source = await startCluster('source')
await createProject(source, 20_000)

async function backUp(format: string, extra: Record<string, string>, during?: () => Promise<void>): Promise<string> {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', format, ...extra }),
    // Never fires a cancel: it only acts on the database while the dump runs.
    cancelAt: during
      ? async step => {
          await step.waitForState(DUMP_PIDS, dumpingTheSchema)
          await during()
          return new Promise(() => {})
        }
      : undefined
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  return row.id
}

describe('database consistency and restore refusals', () => {
  const before = tableHashes(source)
  let backupId = ''

  it('writes during the backup are in neither the dump nor the manifest; the restore matches the snapshot', async () => {
    const snapshotRows = await before
    const release = await lockTable(source, 'public.events')
    backupId = await backUp('zip', { 'database-url': source.url() }, async () => {
      await source.sql(`insert into public.notes (body) select 'written during the backup ' || i from generate_series(1, 500) i`)
      await source.sql(`delete from public.labels`)
      await release()
      await source.sql(`insert into public.events (at, kind) select now(), 'late' from generate_series(1, 300)`)
    })
    const target = await startCluster('target')
    await createEmptyProject(target)
    const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backupId, 'database-url': target.url() }))
    assert.equal(restore.conclusion, 'success', restore.stdout)
    assert.deepEqual(await tableHashes(target), snapshotRows)
    assert.match(restore.summary, /public\.events<\/td><td>20000<\/td><td>20000<\/td><td>✅/)
    assert.notDeepEqual(await tableHashes(source), snapshotRows, 'the writes did land in the source')
  })

  it('a target that already holds tables is refused and left untouched', async () => {
    const untouched = await tableHashes(source)
    const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backupId, 'database-url': source.url() }))
    assert.equal(restore.conclusion, 'failure')
    assert.match(
      errorsOf(restore),
      /\(input 'database-url'\) is not empty: it has .*nothing was changed\. To restore into it anyway, set 'allow-non-empty-database: true'/
    )
    assert.deepEqual(await tableHashes(source), untouched)
  })

  it('an archive without a database part is refused with why, and the target is left untouched', async () => {
    const filesOnly = await backUp('tar.gz', { path: 'data' })
    const target = await startCluster('target-files-only')
    await createEmptyProject(target)
    const empty = await tableHashes(target)
    const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': filesOnly, 'database-url': target.url() }))
    assert.equal(restore.conclusion, 'failure')
    assert.match(
      errorsOf(restore),
      /The archive has no database\/manifest\.json: it holds no database \(the backup was made without 'database-url'\)/
    )
    assert.deepEqual(await tableHashes(target), empty)
    assert.equal((await readRow(svc, filesOnly)).status, 'success', 'a refused restore does not touch the row')
  })
})
