import { crc32 } from 'node:zlib'

/**
 * S3's additional checksums, in the forms the store reports them. The upload asks for CRC32 of
 * type FULL_OBJECT: the CRC32 of the whole object, which the worker chains over the parts in
 * order (`crc32(part, previous)`), so it can be compared with a CRC32 of the object read back.
 */

/** S3's wire form of a CRC32: the 4 bytes big-endian, base64. */
export function crc32Base64(value: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value >>> 0)
  return bytes.toString('base64')
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
