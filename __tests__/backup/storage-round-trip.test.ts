// Storage round trip against the S3 stand-in playing Supabase Storage's endpoint: 3 buckets, over
// 1,000 objects (spaces, unicode, deep prefixes, empty objects, one of 50 MiB), backed up with the
// built action, extracted with the system's tar and unzip, and restored by the restore sub-action
// into empty buckets: keys, bytes, content types and metadata compared.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { actionInputs, backupJob, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import {
  largeObject,
  putObjects,
  smallObject,
  snapshotBucket,
  snapshotOf,
  storageInputs,
  type FixtureObject,
  type ObjectSnapshot
} from '../harness/storage.js'
import { listTree } from '../harness/workspace.js'

const MiB = 1024 * 1024

const { svc, bucket, workspace } = await setUpTestFile('storage-archive', {})
const scratch = await mkdtemp(path.join(os.tmpdir(), 'storage-round-trip-'))
after(() => rm(scratch, { recursive: true, force: true }))

const fixtures = new Map<string, FixtureObject[]>([
  [
    await svc.newBucket('assets'),
    Array.from({ length: 500 }, (_, index) => smallObject(`img/${index % 10}/${'deep/prefix/'.repeat(8)}thumb ${index}.png`, index))
  ],
  [
    await svc.newBucket('avatars'),
    [
      ...Array.from({ length: 200 }, (_, index) => smallObject(`users/ünïcødé ☃ ${index % 5}/${index} file name.txt`, index)),
      ...Array.from({ length: 180 }, (_, index) => smallObject(`日本語/ファイル ${index}.json`, index + 1000)),
      ...Array.from({ length: 20 }, (_, index) => ({ ...smallObject(`empty/object ${index}`, index), body: Buffer.alloc(0) }))
    ]
  ],
  [
    await svc.newBucket('media'),
    [
      ...Array.from({ length: 100 }, (_, index) => smallObject(`clips/${index}.txt`, index + 2000)),
      { ...smallObject('.emptyFolderPlaceholder', 1), body: Buffer.alloc(0) },
      largeObject('movies/large 50MiB.mp4', 50 * MiB + 17, 50),
      largeObject('movies/medium.mp4', 3 * MiB + 5, 3)
    ]
  ]
])
const buckets = [...fixtures.keys()]
for (const [name, objects] of fixtures) await putObjects(svc, name, objects)
const objectCount = [...fixtures.values()].reduce((sum, objects) => sum + objects.length, 0)

function expected(objects: readonly FixtureObject[]): Map<string, ObjectSnapshot> {
  return new Map(objects.map(object => [object.key, snapshotOf(object)]))
}

function sorted(snapshots: Map<string, ObjectSnapshot>): [string, ObjectSnapshot][] {
  return [...snapshots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** Extracts the archive with the system's own tool, the way a person restoring by hand would. */
async function extractWithSystemTools(format: string, key: string): Promise<string> {
  const archive = path.join(scratch, `${format}.archive`)
  await writeFile(archive, await svc.s3.getObject(bucket, key))
  const into = path.join(scratch, `${format}-extracted`)
  await mkdir(into)
  if (format === 'zip') execFileSync('unzip', ['-q', archive, '-d', into])
  else execFileSync('tar', [...(format === 'tar.zst' ? ['--zstd'] : []), '-xf', archive, '-C', into])
  return into
}

describe('Storage round trip', () => {
  for (const format of ['zip', 'tar.zst', 'tar.gz'] as const) {
    it(`${format}: every object comes back with its bytes, content type and metadata`, async () => {
      const row = await insertRow(svc)
      const job = await backupJob(svc, {
        workspace: workspace.dir,
        inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', format, ...storageInputs(svc, buckets.join('\n')) })
      })
      assert.equal(job.main.conclusion, 'success', job.main.stdout)
      assert.equal((await readRow(svc, row.id)).status, 'success')
      assert.equal(job.main.outputs['storage-objects'], String(objectCount))
      assert.match(job.main.summary, /Storage/)

      // By hand: storage/<bucket>/<key> for every object, with its bytes, and the manifest.
      const extracted = await extractWithSystemTools(format, job.main.outputs['s3-key'] ?? '')
      const tree = await listTree(path.join(extracted, 'storage'))
      for (const [name, objects] of fixtures) {
        for (const object of objects) {
          const entry = tree.get(`${name}/${object.key}`)
          assert.equal(entry?.sha256, snapshotOf(object).sha256, `storage/${name}/${object.key}`)
        }
      }
      const manifest = JSON.parse(await readFile(path.join(extracted, 'storage', 'manifest.json'), 'utf8')) as {
        objects: { bucket: string; key: string; size: number; sha256: string; contentType: string; metadata: Record<string, string> }[]
        skipped: unknown[]
        buckets: { name: string; objects: number }[]
      }
      assert.equal(manifest.objects.length, objectCount)
      assert.deepEqual(manifest.skipped, [])
      assert.deepEqual(
        manifest.buckets.map(entry => [entry.name, entry.objects]),
        buckets.map(name => [name, fixtures.get(name)?.length])
      )
      const large = manifest.objects.find(object => object.key === 'movies/large 50MiB.mp4')
      assert.equal(large?.sha256, snapshotOf(fixtures.get(buckets[2] as string)?.at(-2) as FixtureObject).sha256)
      assert.equal(large?.contentType, 'video/mp4')

      // The restore sub-action, into empty buckets of other names.
      const targets = await Promise.all(buckets.map(() => svc.newBucket(`restored-${format.replace('.', '')}`)))
      const mapping = buckets.map((name, index) => `${name}=${targets[index]}`).join('\n')
      const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': row.id, ...storageInputs(svc, mapping) }))
      assert.equal(restore.conclusion, 'success', restore.stdout)
      assert.equal(restore.outputs['storage-objects'], String(objectCount))
      for (const [index, name] of buckets.entries()) {
        const restored = await snapshotBucket(svc, targets[index] as string)
        assert.deepEqual(sorted(restored), sorted(expected(fixtures.get(name) ?? [])), `bucket ${name}`)
      }
    })
  }
})

// A quick check that the fixture itself reads back as written (the comparison above relies on it).
describe('Storage fixture', () => {
  it('the stand-in keeps content types and metadata as uploaded', async () => {
    const name = buckets[1] as string
    const snapshots = await snapshotBucket(svc, name)
    assert.deepEqual(sorted(snapshots), sorted(expected(fixtures.get(name) ?? [])))
    assert.equal(createHash('sha256').update('').digest('hex'), snapshots.get('empty/object 0')?.sha256)
  })
})
