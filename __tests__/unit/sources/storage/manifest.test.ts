// storage/manifest.json: written a line per object as the archive goes, read back by the restore;
// and the keys an archive cannot hold as a path unchanged.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { keyProblem, ManifestWriter, objectPath, parseStorageManifest } from '../../../../src/sources/storage/manifest.js'

const record = (bucket: string, key: string, size: number) => ({
  bucket,
  key,
  size,
  contentType: 'text/plain',
  metadata: { owner: 'ünïcødé ☃' },
  sha256: 'ab'.repeat(32),
  etag: '"etag"',
  lastModified: '2024-05-01T00:00:00.000Z'
})

describe('storage manifest', () => {
  it('writes valid JSON that reads back as written, buckets without objects included', () => {
    const writer = new ManifestWriter(new Date('2024-05-01T00:00:00Z'))
    writer.addBucket('avatars')
    writer.addBucket('empty')
    writer.add(record('avatars', 'a b/c.txt', 3))
    writer.add({ ...record('avatars', '日本語.json', 5), changedAfterListing: true })
    writer.skip({ bucket: 'avatars', key: 'gone', reason: 'deleted after it was listed, before it was read' })
    const manifest = parseStorageManifest(Buffer.concat(writer.finish()).toString('utf8'))
    assert.equal(manifest.createdAt, '2024-05-01T00:00:00.000Z')
    assert.deepEqual(manifest.objects, [
      record('avatars', 'a b/c.txt', 3),
      { ...record('avatars', '日本語.json', 5), changedAfterListing: true }
    ])
    assert.deepEqual(manifest.skipped, [{ bucket: 'avatars', key: 'gone', reason: 'deleted after it was listed, before it was read' }])
    assert.deepEqual(manifest.buckets, [
      { name: 'avatars', objects: 2, bytes: 8 },
      { name: 'empty', objects: 0, bytes: 0 }
    ])
  })

  it('holds many objects in a few buffers, past one buffer of text', () => {
    const writer = new ManifestWriter(new Date())
    writer.addBucket('b')
    for (let index = 0; index < 5000; index++) writer.add(record('b', `key ${index}`, index))
    const manifest = parseStorageManifest(Buffer.concat(writer.finish()).toString('utf8'))
    assert.equal(manifest.objects.length, 5000)
    assert.equal(manifest.objects[4999]?.key, 'key 4999')
  })

  it('an empty manifest is valid', () => {
    const manifest = parseStorageManifest(Buffer.concat(new ManifestWriter(new Date()).finish()).toString('utf8'))
    assert.deepEqual([manifest.objects, manifest.skipped, manifest.buckets], [[], [], []])
  })

  it('refuses a manifest of another version or with an incomplete entry', () => {
    assert.throws(() => parseStorageManifest('{"manifestVersion":2,"objects":[],"buckets":[]}'), /manifestVersion 2/)
    assert.throws(() => parseStorageManifest('{"manifestVersion":1,"objects":[{"bucket":"b"}],"buckets":[]}'), /without bucket, key/)
    assert.throws(() => parseStorageManifest('not json'), /is not JSON/)
  })

  it('objects go under storage/<bucket>/<key>', () => {
    assert.equal(objectPath('avatars', 'a/b c.png'), 'storage/avatars/a/b c.png')
  })

  it('refuses keys an archive would give back as another key', () => {
    for (const key of ['/leading', 'trailing/', 'a//b', 'a/./b', 'a/../b', '..', 'nul\u0000']) assert.ok(keyProblem(key), key)
    for (const key of ['a', 'a/b/c.txt', '.emptyFolderPlaceholder', 'ünïcødé ☃/x', 'a..b', '...'])
      assert.equal(keyProblem(key), undefined, key)
  })
})
