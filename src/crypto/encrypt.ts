import { createHash } from 'node:crypto'
import { resized } from '../archive/buffers.js'
import { CHUNK_SIZE, PayloadCipher, SEALED_CHUNK_SIZE, type SealedPrefix } from './age.js'

/** The archive inside an encrypted object: its size and SHA-256 (hex). */
export interface Plaintext {
  size: number
  sha256: string
}

/** The archive encrypted as it streams, and what is known of the plaintext once it has all gone by. */
export interface EncryptedArchive {
  /** The age file's bytes in order, each piece lent: copy it before asking for the next. */
  pieces: AsyncGenerator<Buffer>
  /** Once `pieces` has ended. */
  plaintext(): Plaintext
}

/**
 * The archive's pieces encrypted to an age file: the header, then the payload in 64 KiB chunks,
 * each sealed as soon as a byte follows it (the last chunk is sealed with the last-chunk flag,
 * so it waits for the end). Holds one chunk and one piece's ciphertext, whatever the archive's size.
 */
export function encryptArchive(pieces: AsyncGenerator<Buffer>, sealed: SealedPrefix): EncryptedArchive {
  const hash = createHash('sha256')
  let size = 0
  let digest: string | undefined
  async function* encrypted(): AsyncGenerator<Buffer> {
    const cipher = new PayloadCipher(sealed.payloadKey)
    const pending = Buffer.allocUnsafeSlow(CHUNK_SIZE)
    let filled = 0
    let index = 0
    let out = Buffer.allocUnsafeSlow(4 * SEALED_CHUNK_SIZE)
    yield sealed.prefix
    for await (const piece of pieces) {
      hash.update(piece)
      size += piece.length
      const most = (Math.floor((filled + piece.length) / CHUNK_SIZE) + 1) * SEALED_CHUNK_SIZE
      if (out.length < most) out = resized(out, most)
      let used = 0
      let offset = 0
      while (offset < piece.length) {
        // A full chunk with a byte after it is not the last one.
        if (filled === CHUNK_SIZE) {
          used += cipher.seal(index++, false, pending, out, used)
          filled = 0
        }
        if (filled === 0 && piece.length - offset > CHUNK_SIZE) {
          used += cipher.seal(index++, false, piece.subarray(offset, offset + CHUNK_SIZE), out, used)
          offset += CHUNK_SIZE
          continue
        }
        const copied = piece.copy(pending, filled, offset)
        filled += copied
        offset += copied
      }
      if (used > 0) yield out.subarray(0, used)
    }
    // Empty only when the whole archive is: then age's one chunk is the empty last one.
    const used = cipher.seal(index, true, pending.subarray(0, filled), out, 0)
    digest = hash.digest('hex')
    yield out.subarray(0, used)
  }
  return {
    pieces: encrypted(),
    plaintext() {
      if (digest === undefined) throw new Error('The archive has not been encrypted to its end yet.')
      return { size, sha256: digest }
    }
  }
}
