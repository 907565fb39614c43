// CRC32 of two pieces put together, from their CRC32s and the second one's length (zlib's crc32_combine):
// how S3 gets a multipart object's FULL_OBJECT CRC32 from its parts', without reading the object again.

/** Multiplies the 32x32 GF(2) matrix `matrix` by the vector `vector`. */
function times(matrix: Uint32Array, vector: number): number {
  let sum = 0
  for (let row = 0; vector !== 0; row++, vector >>>= 1) if (vector & 1) sum ^= matrix[row] ?? 0
  return sum >>> 0
}

function square(matrix: Uint32Array): Uint32Array {
  return Uint32Array.from(matrix, row => times(matrix, row))
}

export function crc32Combine(first: number, second: number, secondLength: number): number {
  if (secondLength <= 0) return first >>> 0
  // The operator for one zero bit, then squared to act on two, four, eight... zero bits at a time.
  let operator: Uint32Array = new Uint32Array(32)
  operator[0] = 0xedb88320
  for (let row = 1; row < 32; row++) operator[row] = 1 << (row - 1)
  operator = square(square(operator)) // four bits
  let crc = first >>> 0
  for (let bytes = secondLength; bytes > 0; bytes = Math.floor(bytes / 2)) {
    operator = square(operator) // one more doubling: 1, 2, 4... bytes
    if (bytes % 2 === 1) crc = times(operator, crc)
  }
  return (crc ^ second) >>> 0
}
