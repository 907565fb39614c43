import { ArchiveError } from '../errors.js'
import type { ByteReader } from './byte-reader.js'

/**
 * The zstd stream cut at frame ends. Node's zstd decompressor (24.x, nodejs/node#64741) stops
 * after the first frame when the next one starts in the same write, and src/compress.ts writes
 * one frame per 4 MiB. Handing it each frame as writes that end exactly where the frame ends
 * makes it decode them all. Skippable frames are dropped here. Frame layout: RFC 8878 section 3.1.
 */
const FRAME_MAGIC = 0xfd2fb528
const SKIPPABLE_MASK = 0xfffffff0
const SKIPPABLE_MAGIC = 0x184d2a50
const DICTIONARY_ID_BYTES = [0, 1, 2, 4]
const CONTENT_SIZE_BYTES = [0, 2, 4, 8]

export async function* zstdFrames(reader: ByteReader): AsyncGenerator<Buffer> {
  while (!(await reader.atEnd())) {
    const magic = (await reader.read(4, 'a zstd frame header')).readUInt32LE(0)
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      await reader.skip((await reader.read(4, 'a zstd skippable frame')).readUInt32LE(0), 'a zstd skippable frame')
      continue
    }
    if (magic !== FRAME_MAGIC)
      throw new ArchiveError(`The zstd stream has data that is not a zstd frame at byte ${reader.position - 4}; refusing the archive.`)
    const descriptor = (await reader.read(1, 'a zstd frame header'))[0] ?? 0
    const singleSegment = (descriptor >> 5) & 1
    const contentSizeFlag = descriptor >> 6
    const rest =
      (singleSegment ? 0 : 1) +
      (DICTIONARY_ID_BYTES[descriptor & 3] ?? 0) +
      (contentSizeFlag === 0 ? singleSegment : (CONTENT_SIZE_BYTES[contentSizeFlag] ?? 0))
    const header = Buffer.alloc(5 + rest)
    header.writeUInt32LE(FRAME_MAGIC, 0)
    header[4] = descriptor
    ;(await reader.read(rest, 'a zstd frame header')).copy(header, 5)
    yield header
    for (let last = false; !last;) {
      const block = await reader.read(3, 'a zstd block header')
      const value = block.readUIntLE(0, 3)
      last = (value & 1) === 1
      const type = (value >> 1) & 3
      if (type === 3)
        throw new ArchiveError(`The zstd stream has a reserved block type at byte ${reader.position - 3}; refusing the archive.`)
      yield block
      yield* reader.take(type === 1 ? 1 : value >>> 3, 'a zstd block')
    }
    if ((descriptor >> 2) & 1) yield await reader.read(4, 'a zstd frame checksum')
  }
}
