import { READ_CHUNK, type ArchiveEntry, type EntryChunk } from '../archive/entry.js'

/**
 * An entry's content in pieces of READ_CHUNK, each lent (valid until the next is asked for), the
 * last one marked: two buffers in turn, so that a full one waits while the next fills.
 */
export async function* pieces(source: AsyncIterable<Buffer>, entry: ArchiveEntry): AsyncGenerator<EntryChunk> {
  const buffers = [Buffer.allocUnsafeSlow(READ_CHUNK), Buffer.allocUnsafeSlow(READ_CHUNK)]
  let current = 0
  let filled = 0
  let waiting: Buffer | undefined
  for await (const piece of source) {
    let offset = 0
    while (offset < piece.length) {
      const buffer = buffers[current] as Buffer
      const copied = piece.copy(buffer, filled, offset)
      filled += copied
      offset += copied
      if (filled === READ_CHUNK) {
        if (waiting) yield { index: -1, entry, data: waiting, last: false }
        waiting = buffer
        current = 1 - current
        filled = 0
      }
    }
  }
  if (filled > 0) {
    if (waiting) yield { index: -1, entry, data: waiting, last: false }
    yield { index: -1, entry, data: (buffers[current] as Buffer).subarray(0, filled), last: true }
  } else {
    yield { index: -1, entry, data: waiting ?? Buffer.alloc(0), last: true }
  }
}
