import { createHash } from 'node:crypto'
import { CHUNK_SIZE, isAgeEncrypted, MAX_HEADER_SIZE, openHeader, PayloadCipher, SEALED_CHUNK_SIZE, TAG_SIZE } from '../crypto/age.js'
import type { Opening } from '../crypto/keys.js'
import { DecryptionError } from '../errors.js'
import type { ArchiveSource } from './source.js'

/** An age-encrypted object read as the archive it holds. */
export interface DecryptedSource extends ArchiveSource {
  /** Which identity (or the passphrase) opened the header, for the log. */
  readonly openedBy: string
  /** The encrypted object as `stream` read it: its size and SHA-256 (what the row records), once the stream has ended. */
  stored(): { bytes: number; sha256: string }
}

/** The first read of the header; a header with many recipients is read again, larger. */
const FIRST_HEADER_READ = 16 * 1024

/**
 * The archive inside an age-encrypted object. The header is read and opened first, so a wrong
 * identity fails before any download. Then every chunk is authenticated before its plaintext is
 * handed on, and the chunk count comes from the object's size, so a chunk dropped, reordered,
 * altered or cut off at the end fails. Ranged reads (zip's central directory) decrypt just the
 * chunks they cover.
 */
export async function decryptSource(source: ArchiveSource, opening: Opening, signal?: AbortSignal): Promise<DecryptedSource> {
  return decrypted(source, opening, await firstBytes(source, signal), signal)
}

/**
 * decryptSource for an object that is an age file; undefined for one that is not. One ranged read
 * both tells which it is and brings the header.
 */
export async function decryptIfEncrypted(
  source: ArchiveSource,
  opening: Opening,
  signal?: AbortSignal
): Promise<DecryptedSource | undefined> {
  const first = await firstBytes(source, signal)
  return isAgeEncrypted(first) ? decrypted(source, opening, first, signal) : undefined
}

function firstBytes(source: ArchiveSource, signal: AbortSignal | undefined): Promise<Buffer> {
  return source.readRange(0, Math.min(source.size, FIRST_HEADER_READ), signal)
}

async function decrypted(
  source: ArchiveSource,
  opening: Opening,
  first: Buffer,
  signal: AbortSignal | undefined
): Promise<DecryptedSource> {
  const { head, opened } = await readHeader(source, opening, first, signal)
  const { payloadStart } = opened
  const cipher = new PayloadCipher(opened.payloadKey)
  const layout = payloadLayout(source, payloadStart)
  const open = (index: number, sealed: Buffer): Buffer => {
    const last = index === layout.chunks - 1
    const plain = cipher.open(index, last, sealed)
    if (plain) return plain
    const where = `${last ? 'its last chunk' : `chunk ${index + 1} of ${layout.chunks}`} (byte ${payloadStart + index * SEALED_CHUNK_SIZE})`
    throw new DecryptionError(
      `${source.name} fails authentication in ${where}: it was altered, damaged or cut short after it was encrypted; refusing it.`
    )
  }
  let stored: { bytes: number; sha256: string } | undefined
  return {
    size: layout.plaintextSize,
    name: source.name,
    openedBy: opened.openedBy,
    stored() {
      if (!stored) throw new Error('The encrypted object has not been read to its end yet.')
      return stored
    },
    async *stream(streamSignal) {
      const hash = createHash('sha256')
      const pending = Buffer.allocUnsafe(SEALED_CHUNK_SIZE)
      let filled = 0
      let read = 0
      let index = 0
      for await (const piece of source.stream(streamSignal)) {
        hash.update(piece)
        let offset = 0
        if (read < payloadStart) {
          // The header the stream brings must be the one opened.
          offset = Math.min(piece.length, payloadStart - read)
          if (!piece.subarray(0, offset).equals(head.subarray(read, read + offset))) {
            throw new DecryptionError(
              `${source.name} changed while it was read: its age header differs from the one first read; refusing it.`
            )
          }
        }
        read += piece.length
        if (read > source.size) throw new DecryptionError(`${source.name} has more than the ${source.size} bytes expected; refusing it.`)
        while (offset < piece.length) {
          if (filled === 0 && index < layout.chunks - 1 && piece.length - offset >= SEALED_CHUNK_SIZE) {
            yield open(index++, piece.subarray(offset, offset + SEALED_CHUNK_SIZE))
            offset += SEALED_CHUNK_SIZE
            continue
          }
          const copied = piece.copy(pending, filled, offset, offset + Math.min(piece.length - offset, SEALED_CHUNK_SIZE - filled))
          filled += copied
          offset += copied
          if (filled === SEALED_CHUNK_SIZE && index < layout.chunks - 1) {
            yield open(index++, pending)
            filled = 0
          }
        }
      }
      if (read !== source.size || index !== layout.chunks - 1) {
        throw new DecryptionError(
          `Read ${read} bytes of ${source.name} but it has ${source.size}: the download was cut short; refusing it.`
        )
      }
      const last = open(index, pending.subarray(0, filled))
      stored = { bytes: read, sha256: hash.digest('hex') }
      yield last
    },
    async readRange(start, end, rangeSignal) {
      const stop = Math.min(end, layout.plaintextSize)
      if (stop <= start) return Buffer.alloc(0)
      const first = Math.floor(start / CHUNK_SIZE)
      const last = Math.floor((stop - 1) / CHUNK_SIZE)
      const from = payloadStart + first * SEALED_CHUNK_SIZE
      const sealed = await source.readRange(from, Math.min(source.size, payloadStart + (last + 1) * SEALED_CHUNK_SIZE), rangeSignal)
      const plain: Buffer[] = []
      for (let index = first; index <= last; index++) {
        const at = (index - first) * SEALED_CHUNK_SIZE
        plain.push(open(index, sealed.subarray(at, at + SEALED_CHUNK_SIZE)))
      }
      return Buffer.concat(plain).subarray(start - first * CHUNK_SIZE, stop - first * CHUNK_SIZE)
    }
  }
}

/** The header opened from `first`, the object's first bytes, read again larger while it does not hold the whole header. */
async function readHeader(
  source: ArchiveSource,
  opening: Opening,
  first: Buffer,
  signal: AbortSignal | undefined
): Promise<{ head: Buffer; opened: NonNullable<Awaited<ReturnType<typeof openHeader>>> }> {
  let head = first
  for (;;) {
    const length = head.length
    const opened = await openHeader(head, opening, source.name)
    if (opened) return { head: head.subarray(0, opened.payloadStart), opened }
    if (length >= source.size) throw new DecryptionError(`${source.name} ends inside its age header: it was cut short; refusing it.`)
    if (length > MAX_HEADER_SIZE) throw new DecryptionError(`${source.name} has an age header over 1 MiB: it is damaged; refusing it.`)
    head = await source.readRange(0, Math.min(source.size, length * 4), signal)
  }
}

/** How many chunks the payload has and how much they hold, from the object's size alone. */
function payloadLayout(source: ArchiveSource, payloadStart: number): { chunks: number; plaintextSize: number } {
  const payloadBytes = source.size - payloadStart
  const chunks = Math.max(1, Math.ceil(payloadBytes / SEALED_CHUNK_SIZE))
  const lastSealed = payloadBytes - (chunks - 1) * SEALED_CHUNK_SIZE
  // Each chunk has its tag, and only an empty payload has an empty (last) chunk.
  if (lastSealed < TAG_SIZE || (chunks > 1 && lastSealed === TAG_SIZE)) {
    throw new DecryptionError(
      `${source.name} ends in the middle of an age chunk (${source.size} bytes): it was cut short or damaged; refusing it.`
    )
  }
  return { chunks, plaintextSize: payloadBytes - chunks * TAG_SIZE }
}
