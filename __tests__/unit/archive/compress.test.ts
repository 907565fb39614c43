// Parallel compression: blocks that make one valid stream, and incompressible data stored rather than compressed.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import zlib from 'node:zlib'
import { it } from 'node:test'
import { lengthOf } from '../../../src/archive/buffers.js'
import { deflateEach, gzip, storedZstdFrame, zstd } from '../../../src/archive/compress.js'

const MiB = 1024 * 1024

/** Text-like and random megabytes, interleaved: some blocks compress, some do not. */
function mixedInput(): Buffer[] {
  const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i} of a log, status=${i % 7 ? 'ok' : 'retry'}\n`).join(''))
  return [text.subarray(0, 3 * MiB), randomBytes(3 * MiB), text.subarray(0, 2 * MiB + 12_345)]
}

/** The pieces are lent (src/buffers.ts): each is copied before the next is asked for. */
async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of stream) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces)
}

async function* from(buffers: Buffer[]): AsyncGenerator<Buffer> {
  yield* buffers
}

it('gzips in parallel blocks into one member that gunzip restores', async () => {
  const pieces = mixedInput()
  const input = Buffer.concat(pieces)
  const gzipped = await collect(gzip(from(pieces), 6))
  assert.ok(zlib.gunzipSync(gzipped).equals(input))
})

it('stores random data instead of deflating it, within a few bytes of its size', async () => {
  const random = randomBytes(4 * MiB)
  const gzipped = await collect(gzip(from([random]), 6))
  assert.ok(gzipped.length < random.length + 1024, `${gzipped.length} bytes for ${random.length} random ones`)
  assert.ok(zlib.gunzipSync(gzipped).equals(random))
})

it('writes zstd as frames that decode as one stream', async () => {
  const pieces = mixedInput()
  const input = Buffer.concat(pieces)
  const compressed = await collect(zstd(from(pieces), 3))
  assert.ok(zlib.zstdDecompressSync(compressed).equals(input))
})

it('stores random data in raw zstd frames that zstd -d decodes', async () => {
  const random = randomBytes(9 * MiB + 5)
  const compressed = await collect(zstd(from([random]), 3))
  assert.ok(compressed.length < random.length + 1024, `${compressed.length} bytes for ${random.length} random ones`)
  const decoded = spawnSync('zstd', ['-d', '-c'], { input: compressed, maxBuffer: 64 * MiB })
  assert.equal(decoded.status, 0, decoded.stderr?.toString())
  assert.ok(decoded.stdout.equals(random))
})

it('writes a raw zstd frame for any length, in blocks of at most 128 KiB', () => {
  for (const length of [1, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1, 4 * MiB]) {
    const block = randomBytes(length)
    const frame = Buffer.concat(storedZstdFrame(block).pieces)
    assert.equal(frame.length, length + 9 + 3 * Math.ceil(length / (128 * 1024)), `${length} bytes`)
    assert.ok(zlib.zstdDecompressSync(frame).equals(block), `${length} bytes`)
  }
})

it('deflates many ranges through one stream, each into a raw deflate stream that inflates alone', async () => {
  const text = (n: number) => Buffer.from(`entry ${n}: `.repeat(40 + n * 7))
  const buffers = [text(1), Buffer.alloc(0), randomBytes(100 * 1024), text(2), Buffer.from('x'), text(3)]
  const input = Buffer.concat(buffers)
  const ranges = buffers.flatMap((buffer, index) => {
    const start = lengthOf(buffers.slice(0, index))
    return [start, start + buffer.length]
  })
  const { output, bounds } = await deflateEach(input, ranges, 6)
  assert.equal(bounds.length, ranges.length)
  for (const [index, buffer] of buffers.entries()) {
    const [start, end] = bounds.slice(2 * index, 2 * index + 2) as [number, number]
    // Empty, random and one-byte buffers do not shrink: they come back as -1, to be stored.
    if ([1, 2, 4].includes(index)) assert.deepEqual([start, end], [-1, -1], `buffer ${index}`)
    else assert.ok(zlib.inflateRawSync(output.subarray(start, end)).equals(buffer), `buffer ${index}`)
  }
})
