// Storage objects that change while the backup runs: every GetObject is held (the stand-in's hang
// fault) once the listing is read; the test then deletes two objects (one read ahead, one large,
// streamed) and rewrites a third, and lets the reads go. The deleted ones are named in warnings
// and recorded under "skipped" in storage/manifest.json, never silently missing; the rewritten one
// is archived whole as it was read, marked "changedAfterListing".
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'
import type { Services } from '../harness/services.js'
import { deleteObject, largeObject, putObjects, smallObject, storageInputs } from '../harness/storage.js'

const MiB = 1024 * 1024
const { svc, bucket, workspace } = await setUpTestFile('storage-changes', {})
const scratch = await mkdtemp(path.join(os.tmpdir(), 'storage-changes-'))
after(() => rm(scratch, { recursive: true, force: true }))

const storage = await svc.newBucket('live')
await putObjects(svc, storage, [
  smallObject('kept/a.txt', 1),
  smallObject('kept/b.txt', 2),
  smallObject('gone.txt', 3),
  smallObject('rewritten.txt', 4),
  largeObject('gone-large.bin', 2 * MiB, 5)
])
const rewritten = Buffer.from('new content, longer than the listed one\n'.repeat(10))

/** Resolves once the stand-in holds a GetObject: the listing is read and the reads have begun. */
async function readsHeld(services: Services): Promise<void> {
  // The stand-in has no event for a held request; its counter is polled, briefly.
  while ((await services.s3.stats()).faulted === 0) await new Promise(resolve => setTimeout(resolve, 50))
}

interface Manifest {
  objects: { key: string; size: number; sha256: string; changedAfterListing?: true }[]
  skipped: { bucket: string; key: string; reason: string }[]
}

describe('Storage objects changed during the backup', () => {
  it('deleted ones are recorded as skipped with why, a rewritten one is archived as read', async () => {
    const row = await insertRow(svc)
    await svc.s3.resetStats()
    await svc.s3.faults({ mode: 'hang', op: 'GetObject' })
    const running = backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', format: 'zip', ...storageInputs(svc, storage) })
    })
    await readsHeld(svc)
    await deleteObject(svc, storage, 'gone.txt')
    await deleteObject(svc, storage, 'gone-large.bin')
    await svc.s3.putObject(storage, 'rewritten.txt', rewritten, { ContentType: 'text/plain' })
    await svc.clearFaults()
    const job = await running

    assert.equal(job.main.conclusion, 'success', job.main.stdout)
    assert.equal((await readRow(svc, row.id)).status, 'success')
    assert.equal(job.main.outputs['storage-objects'], '3')
    const warnings = job.main.commands.filter(command => command.command === 'warning').map(command => command.message)
    for (const key of ['gone.txt', 'gone-large.bin']) {
      assert.ok(
        warnings.some(message => message.includes(`${storage}/${key}`) && message.includes('deleted after it was listed')),
        warnings.join('\n')
      )
    }
    assert.equal(errorsOf(job.main), '')
    assert.match(job.main.summary, /2 Storage objects are not in the archive/)
    assert.match(job.main.summary, /1 Storage object was rewritten after the listing/)

    const archive = path.join(scratch, 'archive.zip')
    await writeFile(archive, await svc.s3.getObject(bucket, job.main.outputs['s3-key'] ?? ''))
    const manifest = JSON.parse(execFileSync('unzip', ['-p', archive, 'storage/manifest.json'], { encoding: 'utf8' })) as Manifest
    assert.deepEqual(manifest.skipped.map(object => [object.key, object.reason]).sort(), [
      ['gone-large.bin', 'deleted after it was listed, before it was read'],
      ['gone.txt', 'deleted after it was listed, before it was read']
    ])
    assert.deepEqual(manifest.objects.map(object => object.key).sort(), ['kept/a.txt', 'kept/b.txt', 'rewritten.txt'])
    const changed = manifest.objects.find(object => object.key === 'rewritten.txt')
    assert.equal(changed?.changedAfterListing, true)
    assert.equal(changed?.sha256, createHash('sha256').update(rewritten).digest('hex'))
    assert.deepEqual(execFileSync('unzip', ['-p', archive, `storage/${storage}/rewritten.txt`]), rewritten)
    assert.equal(manifest.objects.filter(object => object.changedAfterListing).length, 1, 'only the rewritten object is marked as changed')
  })
})
