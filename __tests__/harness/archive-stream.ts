import { Readable } from 'node:stream'
import { createArchive } from '../../src/backup/archive.js'
import type { ArchiveFormat } from '../../src/archive/formats.js'
import type { Listing } from '../../src/sources/files/listing.js'

/**
 * The archive as a stream for a file or a tool's stdin. Its pieces are lent (src/buffers.ts) and a
 * writable stream keeps chunks until written, so each is copied, as the upload does into its parts.
 */
export function archiveStream(entries: Listing, format: ArchiveFormat, level: number | undefined): Readable {
  return Readable.from(copies(createArchive({ files: entries }, format, level).pieces), { objectMode: false })
}

/** Each lent piece, copied before the next is asked for. */
export async function* copies(pieces: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const piece of pieces) yield Buffer.from(piece)
}
