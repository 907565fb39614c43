import type { Transform } from 'node:stream'
import zlib from 'node:zlib'
import { BufferPool, free, resized } from './buffers.js'
import { READ_CHUNK } from './entry.js'
import { COMPRESSION_JOBS, CORES, inOrder } from '../threads/parallel.js'

/**
 * Parallel compression of one long stream (a tar), as pigz and `zstd -T0` do it:
 * - deflate (gzip, and each zip entry): the stream is cut into blocks deflated concurrently,
 *   each primed with the previous block's last 32 KiB as dictionary and ended with a sync flush
 *   (byte-aligned, not final). Concatenated they are ONE valid raw deflate stream that can still
 *   refer back across block edges, so the output is a single gzip member the size of gzip's.
 * - zstd: blocks are compressed as independent frames; concatenated frames are a valid zstd
 *   stream for every decoder (`zstd -d`, `tar --zstd`, libarchive).
 * Either way, a block that would not shrink is stored in the format's raw blocks (worthCompressing).
 */

/** Deflate's window: a block may refer back this far into the previous one. */
const WINDOW = 32 * 1024
/** A final, empty fixed-Huffman block: ends a deflate stream whose blocks all ended with a sync flush. */
export const DEFLATE_END = Buffer.from([0x03, 0x00])
/** zstd frames are larger than deflate blocks: zstd's window is larger, and frames cost their context. */
const ZSTD_BLOCK = 4 * READ_CHUNK

/**
 * zlib's async API hands output back in pieces of `chunkSize` (16 KiB by default), each a round trip
 * from the threadpool to the main thread: at that size the callbacks cost the main thread ~3 s per
 * GiB. 256 KiB makes them few without holding a block-sized output buffer per job.
 */
const OUTPUT_PIECE = 256 * 1024

/** Smaller blocks are compressed without asking: sampling them would cost about as much. */
const SAMPLE_FROM = 64 * 1024
const SAMPLE = 16 * 1024
/** Compression must save at least 3% of a sample for its block to be compressed rather than stored. */
const WORTH_COMPRESSING = 0.97
/** The sample's output in one buffer of its own (zlib's 16 KiB default comes from Node's pool: see free()). */
const SAMPLER = { chunkSize: 3 * SAMPLE + 1024, params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } }

/**
 * Media, archives and encrypted files do not compress, yet deflate and zstd spend as much CPU on
 * them as on text or more (a third of the time on a typical tree). Level-1 zstd of three slices
 * tells them apart; such a block is stored (deflate's or zstd's raw blocks), costing a copy and a
 * few bytes per block. The sample runs on the main thread: ~50 us, less than a trip to the
 * threadpool, and a tenth of deflate's time on random data (~0.6 ms).
 */
function worthCompressing(block: Buffer): boolean {
  if (block.length < SAMPLE_FROM) return true
  const middle = (block.length - SAMPLE) >> 1
  const sample = Buffer.concat([block.subarray(0, SAMPLE), block.subarray(middle, middle + SAMPLE), block.subarray(-SAMPLE)])
  const compressed = zlib.zstdCompressSync(sample, SAMPLER)
  const worth = compressed.length < sample.length * WORTH_COMPRESSING
  free([sample, compressed])
  return worth
}

/**
 * Deflates one block of a stream, ended with a sync flush (DEFLATE_END closes the stream);
 * `dictionary` is the end of the block before it in the same stream, if any. The output comes in
 * the engine's pieces, which the caller owns (free them once written).
 */
export async function deflateBlock(block: Buffer, level: number, dictionary: Buffer | undefined): Promise<Buffer[]> {
  const stored = level > 0 && !worthCompressing(block)
  const engine = zlib.createDeflateRaw({
    level: stored ? 0 : level,
    chunkSize: OUTPUT_PIECE,
    ...(dictionary && !stored ? { dictionary: dictionary.subarray(-WINDOW) } : {}),
    finishFlush: zlib.constants.Z_SYNC_FLUSH
  })
  return compressOnce(engine, block)
}

/** The end of `block` that the next block of its stream may refer back to, as a copy it may outlive. */
export function dictionaryOf(block: Buffer): Buffer {
  return Buffer.from(block.subarray(-WINDOW))
}

/**
 * Runs `input` through an engine made for it alone, as zlib's one-shot functions do, but hands
 * back the engine's output pieces instead of a copy of them joined.
 */
function compressOnce(engine: Transform, input: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = []
    engine.on('data', (piece: Buffer) => pieces.push(piece))
    engine.once('error', reject)
    engine.once('end', () => resolve(pieces))
    engine.end(input)
  })
}

/** A full flush ends with an empty stored block: these four bytes. */
const FLUSH_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** What deflateEach made of its ranges. */
export interface DeflatedEach {
  /** The raw deflate streams one after the other, each with DEFLATE_END: the caller's to free once written. */
  output: Buffer
  /** Two numbers per range: where its stream starts and ends in `output`; -1 and -1 to store the range as it is. */
  bounds: number[]
}

/**
 * Deflates many small ranges of `input` (start and end, two numbers each), each into a raw deflate
 * stream of its own, through one zlib stream in one job: a full flush after each (byte-aligned,
 * history reset) ends its stream, and DEFLATE_END closes it. A zlib stream per small file cost
 * the main thread ~0.3 ms and ~300 KiB of external memory each (a full GC every ~200 files): zip
 * took a third longer than tar.gz. A range that deflate would not shrink is stored.
 *
 * The ranges are written one at a time and the engine's output copied into one buffer as it
 * comes: nothing is made per range that outlives its write. Written all at once, each range's
 * write request, view and output piece lived until the whole job was done and outlived V8's
 * young generation (see zip.ts's Group for what that cost).
 */
export async function deflateEach(input: Buffer, ranges: readonly number[], level: number): Promise<DeflatedEach> {
  const engine = zlib.createDeflateRaw({ level, chunkSize: OUTPUT_PIECE, flush: zlib.constants.Z_FULL_FLUSH })
  // A write's failure comes to its callback too.
  engine.on('error', () => {})
  let rangeBytes = 0
  for (let range = 0; range < ranges.length; range += 2) rangeBytes += (ranges[range + 1] as number) - (ranges[range] as number)
  // Deflate output is rarely larger than its input, and what would be is stored instead.
  let output: Buffer = Buffer.allocUnsafeSlow(rangeBytes + 1024)
  let used = 0
  // The engine's own output buffers: a few per job, freed once everything was copied out of them.
  const engineBuffers: Buffer[] = []
  const append = (bytes: Buffer): void => {
    if (used + bytes.length > output.length) output = resized(output, Math.max(used + bytes.length, 2 * output.length))
    used += bytes.copy(output, used)
  }
  engine.on('data', (piece: Buffer) => {
    append(piece)
    if (piece.buffer !== engineBuffers.at(-1)?.buffer) engineBuffers.push(piece)
  })
  const bounds: number[] = []
  try {
    for (let range = 0; range < ranges.length; range += 2) {
      const piece = input.subarray(ranges[range], ranges[range + 1])
      if (piece.length === 0 || !worthCompressing(piece)) {
        bounds.push(-1, -1)
        continue
      }
      const start = used
      // The callback comes once the write's output was pushed: the output since `start` is all of it.
      await new Promise<void>((resolve, reject) => engine.write(piece, error => (error ? reject(error) : resolve())))
      if (used - start < FLUSH_MARKER.length || !output.subarray(used - FLUSH_MARKER.length, used).equals(FLUSH_MARKER)) {
        throw new Error('zlib output did not end at a flush')
      }
      if (used - start + DEFLATE_END.length < piece.length) {
        append(DEFLATE_END)
        bounds.push(start, used)
      } else {
        used = start
        bounds.push(-1, -1)
      }
    }
  } catch (error) {
    free([output])
    throw error
  } finally {
    engine.destroy()
  }
  // Every write is done: the engine no longer writes into its buffers.
  free(engineBuffers)
  return { output: output.subarray(0, used), bounds }
}

/** gzip (RFC 1952) of `input`: one member, deflated in parallel blocks. */
export async function* gzip(input: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  // Header: deflate, no name or mtime (the archive's bytes depend on the files only), OS = Unix.
  yield Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, level >= 9 ? 0x02 : level <= 1 ? 0x04 : 0x00, 0x03])
  let crc = 0
  let inputLength = 0
  const pool = new BufferPool(READ_CHUNK)
  async function* jobs(): AsyncGenerator<() => Promise<Compressed>> {
    let dictionary: Buffer | undefined
    for await (const block of blocks(input, pool)) {
      crc = zlib.crc32(block, crc)
      inputLength += block.length
      const previous = dictionary
      yield () => deflateBlock(block, level, previous).then(pieces => ({ block, pieces, owned: previous ? [...pieces, previous] : pieces }))
      // A copy: the block goes back to the pool once compressed, maybe before the next job reads its dictionary.
      dictionary = dictionaryOf(block)
    }
  }
  yield* recycling(inOrder(jobs(), COMPRESSION_JOBS), pool)
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc >>> 0, 0)
  trailer.writeUInt32LE(inputLength % 2 ** 32, 4)
  yield Buffer.concat([DEFLATE_END, trailer])
}

/** zstd of `input`: independent frames compressed in parallel; a block that would not shrink is stored. */
export async function* zstd(input: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  const pool = new BufferPool(ZSTD_BLOCK)
  const options = { chunkSize: OUTPUT_PIECE, params: { [zlib.constants.ZSTD_c_compressionLevel]: level } }
  async function* jobs(): AsyncGenerator<() => Promise<Compressed>> {
    for await (const block of blocks(input, pool)) {
      if (!worthCompressing(block)) {
        const stored = storedZstdFrame(block)
        yield () => Promise.resolve({ block, ...stored })
        continue
      }
      yield () => compressOnce(zlib.createZstdCompress(options), block).then(pieces => ({ block, pieces, owned: pieces }))
    }
  }
  // One frame per core, not one more: each holds a 4 MiB block, its output and ~3 MiB of context.
  yield* recycling(inOrder(jobs(), CORES), pool)
}

/** zstd's largest block (RFC 8878, Block_Maximum_Size). */
const ZSTD_RAW_BLOCK = 128 * 1024

/**
 * A zstd frame that holds `block` as it is, in raw blocks (RFC 8878, 3.1.1): 9 bytes of frame
 * header and 3 per 128 KiB. The pieces are the headers and views of `block`, not a copy of it.
 */
export function storedZstdFrame(block: Buffer): { pieces: Buffer[]; owned: Buffer[] } {
  const count = Math.max(1, Math.ceil(block.length / ZSTD_RAW_BLOCK))
  const headers = Buffer.allocUnsafeSlow(9 + 3 * count)
  headers.writeUInt32LE(0xfd2fb528, 0)
  // Single segment (the window is the frame) with a 4-byte content size; no checksum, no dictionary.
  headers[4] = 0xa0
  headers.writeUInt32LE(block.length, 5)
  const pieces: Buffer[] = []
  for (let index = 0, at = 9; index < count; index++, at += 3) {
    const data = block.subarray(index * ZSTD_RAW_BLOCK, (index + 1) * ZSTD_RAW_BLOCK)
    // Last_Block in bit 0, Block_Type 0 (raw) in bits 1-2, the size above them.
    headers.writeUIntLE((data.length << 3) | (index === count - 1 ? 1 : 0), at, 3)
    pieces.push(index === 0 ? headers.subarray(0, 12) : headers.subarray(at, at + 3), data)
  }
  return { pieces, owned: [headers] }
}

interface Compressed {
  block: Buffer
  /** The block's output: the engine's own buffers, or views of the block. */
  pieces: Buffer[]
  /** What to free once the output is written: the engine's buffers, a job's dictionary. */
  owned: Buffer[]
}

/**
 * Lends each block's output (see buffers.ts), frees it once the consumer moves on, and hands the
 * block back for the next input: the same few block buffers serve the whole archive.
 */
async function* recycling(compressed: AsyncIterable<Compressed>, pool: BufferPool): AsyncGenerator<Buffer> {
  for await (const { block, pieces, owned } of compressed) {
    yield* pieces
    free(owned)
    pool.giveBack(block)
  }
}

/** Regroups a stream of lent pieces of any size into blocks of the pool's size (the last one may be shorter). */
async function* blocks(input: AsyncIterable<Buffer>, pool: BufferPool): AsyncGenerator<Buffer> {
  const size = pool.size
  let block = pool.take()
  let filled = 0
  for await (const piece of input) {
    let offset = 0
    while (offset < piece.length) {
      const copied = piece.copy(block, filled, offset)
      filled += copied
      offset += copied
      if (filled === size) {
        yield block
        block = pool.take()
        filled = 0
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled)
}
