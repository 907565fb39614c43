// The full-object CRC32, the upload's and the S3 stand-in's: combined from the parts' CRC32s as S3 does,
// equal to reading the whole object.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { it } from 'node:test'
import zlib from 'node:zlib'
import { crc32Combine } from '../../../src/store/checksums.js'

it('combines the CRC32s of pieces into the CRC32 of the pieces put together', () => {
  for (const sizes of [
    [0, 5],
    [10, 0],
    [1, 1],
    [8 * 1024 * 1024, 3 * 1024 * 1024 + 7],
    [7, 65_536, 1, 300_000]
  ]) {
    const pieces = sizes.map(size => randomBytes(size))
    const combined = pieces.reduce((crc, piece) => crc32Combine(crc, zlib.crc32(piece), piece.length), 0)
    assert.equal(combined, zlib.crc32(Buffer.concat(pieces)), sizes.join(' + '))
  }
})
