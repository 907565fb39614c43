// The zip writer copies each piece into a job buffer of its own. A piece larger than the buffer
// must fail the archive loudly: Buffer.copy would stop at the buffer's end and leave the rest of
// the entry out without a word (the Storage manifest once did exactly that).
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { READ_CHUNK, type ArchiveEntry, type EntryChunk, type EntryIndex } from '../../../src/archive/entry.js'
import { zip } from '../../../src/archive/zip.js'

const entry: ArchiveEntry = {
  root: '/nowhere',
  relativePath: 'storage/manifest.json',
  type: 'file',
  size: 0,
  mode: 0o644,
  mtimeSeconds: 0,
  linkTarget: undefined,
  streamed: true
}
const index: EntryIndex = { entry: () => entry, type: () => 'file' }

async function* pieces(sizes: number[]): AsyncGenerator<EntryChunk> {
  for (const [i, size] of sizes.entries()) yield { index: -1, entry, data: Buffer.alloc(size, 0x61), last: i === sizes.length - 1 }
}

async function drain(archive: AsyncGenerator<Buffer>): Promise<number> {
  let bytes = 0
  for await (const piece of archive) bytes += piece.length
  return bytes
}

it('takes a streamed entry in pieces of READ_CHUNK', async () => {
  assert.ok((await drain(zip(pieces([READ_CHUNK, READ_CHUNK, 10]), 0, index))) > 2 * READ_CHUNK)
})

it('refuses a piece larger than its job buffer instead of cutting it short', async () => {
  await assert.rejects(drain(zip(pieces([4 * READ_CHUNK]), 0, index)), /does not fit the zip writer's .* buffer; nothing was left out/)
})
