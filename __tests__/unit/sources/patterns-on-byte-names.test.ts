// How `path` lines match names that are not UTF-8 (collect.ts): a byte that is not UTF-8 is one character that
// only a wildcard matches, and the UTF-8 parts of the name match as their characters.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, it } from 'node:test'
import { nameBytes } from '../../../src/archive/names.js'
import { collectEntries } from '../../../src/sources/files/collect.js'
import { bytePath, writeByteNamedTree } from '../../harness/workspace.js'

let root: string

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'byte-patterns-'))
  await writeByteNamedTree(root, [
    [bytePath('data/\xff.txt'), 'ff'],
    [bytePath('data/caf\xc3\xa9-\xe9.log'), 'mixed'],
    [bytePath('data/dir-\xfe/inner.txt'), 'inner'],
    [bytePath('data/plain.txt'), 'plain'],
    [bytePath('other/\xfe'), 'other']
  ])
})
after(() => rm(root, { recursive: true, force: true }))

/** The listed paths as latin1 (one character per byte), directories with a trailing slash. */
async function list(lines: string[]): Promise<string[]> {
  const listing = await collectEntries(lines, { workspace: root, includeHiddenFiles: false })
  return [...listing].map(entry => nameBytes(entry.relativePath).toString('latin1') + (entry.type === 'directory' ? '/' : ''))
}

it('a directory line and data/** bring every name below, UTF-8 or not', async () => {
  const everything = ['data/', 'data/caf\xc3\xa9-\xe9.log', 'data/dir-\xfe/', 'data/dir-\xfe/inner.txt', 'data/plain.txt', 'data/\xff.txt']
  assert.deepEqual(await list(['data']), everything)
  assert.deepEqual(await list(['data/**']), everything)
})

it('a byte that is not UTF-8 is one character to ? and *, and the UTF-8 parts match as written', async () => {
  assert.deepEqual(await list(['data/?.txt']), ['data/\xff.txt'])
  assert.deepEqual(await list(['data/*.txt']), ['data/plain.txt', 'data/\xff.txt'])
  assert.deepEqual(await list(['data/café-?.log']), ['data/caf\xc3\xa9-\xe9.log'])
  assert.deepEqual(await list(['data/dir-?/*']), ['data/dir-\xfe/inner.txt'])
  assert.deepEqual(await list(['**/?']), ['other/\xfe'])
})

it('excludes them with the same wildcards', async () => {
  assert.deepEqual(await list(['data', '!data/?.txt', '!data/dir-?']), ['data/', 'data/caf\xc3\xa9-\xe9.log', 'data/plain.txt'])
})
