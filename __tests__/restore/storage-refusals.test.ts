// The restore's Storage part never overwrites unless told: a key that already exists in the
// target bucket refuses the restore before any object is written; 'allow-overwrite-storage: true'
// replaces it. A target bucket that does not exist, or a bucket the archive does not hold, is
// refused by name, with nothing written.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { putObjects, smallObject, snapshotBucket, snapshotOf, storageInputs, type FixtureObject } from '../harness/storage.js'

const { svc, bucket, workspace } = await setUpTestFile('storage-refusals', {})
const source = await svc.newBucket('source')
const objects: FixtureObject[] = [smallObject('a.txt', 1), smallObject('dir/b.json', 2), smallObject('dir/c.png', 3)]
await putObjects(svc, source, objects)
const existing: FixtureObject = { ...smallObject('dir/b.json', 99), body: Buffer.from('already here\n') }
let rowId = ''

function restoreInto(target: string, extra: Record<string, string> = {}) {
  return restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': rowId, ...storageInputs(svc, `${source}=${target}`), ...extra }))
}

describe('Storage restore refusals', () => {
  before(async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', ...storageInputs(svc, source) })
    })
    assert.equal(job.main.conclusion, 'success', job.main.stdout)
    rowId = row.id
  })

  it('a key that exists refuses the restore, and nothing is written', async () => {
    const target = await svc.newBucket('taken')
    await putObjects(svc, target, [existing])
    const restore = await restoreInto(target)
    assert.equal(restore.conclusion, 'failure')
    assert.match(
      errorsOf(restore),
      new RegExp(`1 key to restore already exists in Storage \\(${target}/dir/b\\.json\\); nothing was written`)
    )
    assert.match(errorsOf(restore), /allow-overwrite-storage/)
    assert.deepEqual([...(await snapshotBucket(svc, target))], [['dir/b.json', snapshotOf(existing)]])
  })

  it("'allow-overwrite-storage: true' replaces it", async () => {
    const target = await svc.newBucket('overwrite')
    await putObjects(svc, target, [existing])
    const restore = await restoreInto(target, { 'allow-overwrite-storage': 'true' })
    assert.equal(restore.conclusion, 'success', restore.stdout)
    const restored = await snapshotBucket(svc, target)
    assert.deepEqual(Object.fromEntries(restored), Object.fromEntries(objects.map(object => [object.key, snapshotOf(object)])))
  })

  it('a target bucket that does not exist is named, before the archive is read', async () => {
    const restore = await restoreInto('no-such-bucket-here')
    assert.equal(restore.conclusion, 'failure')
    assert.match(errorsOf(restore), /The Storage bucket 'no-such-bucket-here' does not exist: create it first/)
  })

  it('a bucket the archive does not hold is named, and nothing is written', async () => {
    const target = await svc.newBucket('unrelated')
    const restore = await restoreHook(
      svc,
      restoreInputs(svc, bucket, { 'backup-id': rowId, ...storageInputs(svc, `not-in-archive=${target}`) })
    )
    assert.equal(restore.conclusion, 'failure')
    assert.match(
      errorsOf(restore),
      new RegExp(`names the bucket 'not-in-archive', which the archive does not hold \\(it holds ${source}\\)`)
    )
    assert.equal((await snapshotBucket(svc, target)).size, 0)
  })
})
