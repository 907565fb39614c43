import { crc32 } from 'node:zlib'

/**
 * S3's additional checksums, in the forms the store reports them. The upload asks for CRC32 of
 * type FULL_OBJECT: the CRC32 of the whole object, combined from the parts' CRC32s as S3 does it,
 * so it can be compared with a CRC32 of the object read back.
 */

/** S3's wire form of a CRC32: the 4 bytes big-endian, base64. */
export function crc32Base64(value: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value >>> 0)
  return bytes.toString('base64')
}

/** S3's FULL_OBJECT CRC32 of a multipart object, from its parts' CRC32s and lengths, in order. */
export function fullObjectCrc32(partCrc32s: readonly number[], partLengths: readonly number[]): number {
  return partCrc32s.reduce((crc, partCrc32, index) => crc32Combine(crc, partCrc32, partLengths[index] ?? 0), 0)
}

/**
 * S3's COMPOSITE multipart checksum (`<CRC32 of the part CRC32s>-<parts>`), which a store that
 * ignores the FULL_OBJECT type reports instead; it covers the same bytes through the part CRCs.
 */
export function compositeCrc32(partCrc32s: readonly number[]): string {
  const concatenated = Buffer.alloc(4 * partCrc32s.length)
  partCrc32s.forEach((value, index) => concatenated.writeUInt32BE(value >>> 0, 4 * index))
  return `${crc32Base64(crc32(concatenated))}-${partCrc32s.length}`
}

/** Multiplies the 32x32 GF(2) matrix `matrix` by the vector `vector`. */
function times(matrix: Uint32Array, vector: number): number {
  let sum = 0
  for (let row = 0; vector !== 0; row++, vector >>>= 1) if (vector & 1) sum ^= matrix[row] ?? 0
  return sum >>> 0
}

function square(matrix: Uint32Array): Uint32Array {
  return Uint32Array.from(matrix, row => times(matrix, row))
}

/** The operators that append 1, 2, 4, 8... zero bytes to a CRC32, made on first use: any length is a product of them. */
let zeroBytesOperators: Uint32Array[] | undefined

function appendZeroBytes(): Uint32Array[] {
  if (!zeroBytesOperators) {
    // The operator for one zero bit, then squared to act on two, four, eight... zero bits at a time.
    let operator: Uint32Array = new Uint32Array(32)
    operator[0] = 0xedb88320
    for (let row = 1; row < 32; row++) operator[row] = 1 << (row - 1)
    operator = square(square(operator)) // four bits
    zeroBytesOperators = []
    // Up to 2^52 bytes: past any object S3 stores.
    for (let power = 0; power <= 52; power++) zeroBytesOperators.push((operator = square(operator)))
  }
  return zeroBytesOperators
}

/**
 * CRC32 of two pieces put together, from their CRC32s and the second one's length (zlib's
 * crc32_combine), with the operators made once: a few microseconds, where a second pass over a
 * 6 MiB part costs ~1 ms.
 */
export function crc32Combine(first: number, second: number, secondLength: number): number {
  const operators = appendZeroBytes()
  let crc = first >>> 0
  for (let bytes = secondLength, power = 0; bytes > 0; bytes = Math.floor(bytes / 2), power++) {
    if (bytes % 2 === 1) crc = times(operators[power] as Uint32Array, crc)
  }
  return (crc ^ second) >>> 0
}
