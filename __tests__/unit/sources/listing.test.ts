// The listing keeps entries in flat buffers: what comes out is what went in, sorted by path.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { ArchiveEntry } from '../../../src/archive/entry.js'
import { Listing } from '../../../src/sources/files/listing.js'

const entry = (relativePath: string, fields: Partial<ArchiveEntry> = {}): Omit<ArchiveEntry, 'root'> => ({
  relativePath,
  type: 'file',
  size: relativePath.length,
  mode: 0o644,
  mtimeSeconds: 1_700_000_000,
  linkTarget: undefined,
  ...fields
})

it('gives back every entry as added, sorted by path, with the workspace as root', () => {
  const listing = new Listing('/work/space')
  listing.add(entry('b/z.txt', { size: 5_000_000_000, mode: 0o600, mtimeSeconds: 0 }))
  listing.add(entry('a', { type: 'directory', size: 0, mode: 0o755 }))
  listing.add(entry('a/link', { type: 'symlink', size: 0, mode: 0o777, linkTarget: '../b/z.txt' }))
  listing.add(entry('a.txt'))
  assert.deepEqual(
    [...listing],
    [
      { root: '/work/space', ...entry('a', { type: 'directory', size: 0, mode: 0o755 }) },
      { root: '/work/space', ...entry('a.txt') },
      { root: '/work/space', ...entry('a/link', { type: 'symlink', size: 0, mode: 0o777, linkTarget: '../b/z.txt' }) },
      { root: '/work/space', ...entry('b/z.txt', { size: 5_000_000_000, mode: 0o600, mtimeSeconds: 0 }) }
    ]
  )
  assert.deepEqual([listing.length, listing.files, listing.directories, listing.bytes], [4, 2, 1, 5_000_000_005])
})

it('keeps any number of entries and non-ASCII names, in the same order on every pass, and more after a pass', () => {
  const listing = new Listing('/w')
  const names = Array.from({ length: 5000 }, (_, index) => `dir-${index % 7}/naïve ${(index * 7919) % 5000} é.txt`)
  for (const name of names) listing.add(entry(name))
  const first = [...listing].map(listed => listed.relativePath)
  assert.deepEqual(
    first,
    [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  )
  assert.deepEqual(
    [...listing].map(listed => listed.relativePath),
    first
  )
  // A pass fits the buffers to what was listed; an entry added after it still finds room.
  listing.add(entry('zz-added later.txt'))
  assert.deepEqual([...listing].at(-1)?.relativePath, 'zz-added later.txt')
  assert.equal(listing.length, 5001)
})

it('answers per index without making an entry: type, size, and the path as bytes', () => {
  const listing = new Listing('/w')
  listing.add(entry('dir', { type: 'directory', size: 0 }))
  listing.add(entry('dir/naïve.txt', { size: 12 }))
  const [directory = -1, file = -1] = listing.sorted()
  assert.deepEqual([listing.type(directory), listing.size(directory)], ['directory', 0])
  assert.deepEqual([listing.type(file), listing.size(file)], ['file', 12])
  const bytes = Buffer.alloc(listing.pathLength(file) + 2, '-')
  assert.equal(listing.copyPath(file, bytes, 1), Buffer.byteLength('dir/naïve.txt'))
  assert.equal(bytes.toString(), '-dir/naïve.txt-')
  assert.deepEqual(listing.entry(file), { root: '/w', ...entry('dir/naïve.txt', { size: 12 }) })
})
