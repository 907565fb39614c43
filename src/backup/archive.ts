import { gzip, zstd } from '../archive/compress.js'
import type { EntryChunk } from '../archive/entry.js'
import type { ArchiveFormat } from '../archive/formats.js'
import { tar } from '../archive/tar.js'
import { zip } from '../archive/zip.js'
import { ArchiveError, BackupError } from '../errors.js'
import type { DatabaseSource } from '../sources/database/source.js'
import type { Listing } from '../sources/files/listing.js'
import type { StorageSource } from '../sources/storage/source.js'
import { readEntries, type ReadProgress } from '../sources/files/reader.js'

/** What has been read into the archive so far, for progress lines and the summary. */
export type ArchiveProgress = ReadProgress

/** What goes into the archive: the database first (when there is one), then the workspace files, then Storage. */
export interface ArchiveContent {
  files: Listing
  database?: DatabaseSource | undefined
  storage?: StorageSource | undefined
}

export interface Archive {
  /** The archive's bytes in order, each piece lent (see buffers.ts): copy it before asking for the next. */
  pieces: AsyncGenerator<Buffer>
  progress: ArchiveProgress
}

/**
 * The archive, produced as it is read: files are read a few pieces ahead, compressed on every
 * core a few blocks ahead, and nothing more is held, so memory does not grow with the tree.
 * Errors (a file vanished or changed) are raised as ArchiveErrors.
 */
export function createArchive(content: ArchiveContent, format: ArchiveFormat, level: number | undefined): Archive {
  const progress: ArchiveProgress = { bytesRead: 0, filesRead: 0 }
  const entries = content.files
  const files = readEntries(entries, progress)
  const sources = [...(content.database ? [content.database.chunks()] : []), files, ...(content.storage ? [content.storage.chunks()] : [])]
  const chunks = sources.length === 1 ? files : concat(sources)
  const bytes = (): AsyncGenerator<Buffer> => {
    switch (format) {
      case 'zip':
        return zip(chunks, level ?? 6, entries)
      case 'tar':
        return tar(chunks)
      case 'tar.gz':
        return gzip(tar(chunks), level ?? 6)
      case 'tar.zst':
        return zstd(tar(chunks), level ?? 3)
    }
  }
  return { pieces: asArchiveErrors(bytes()), progress }
}

/**
 * Raises whatever the archive fails with as an ArchiveError. Not a generator around the archive's:
 * each piece through one more generator cost ~60 MiB of garbage per GiB of small files.
 */
function asArchiveErrors(pieces: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  const convert = (error: unknown): never => {
    // The sources' own errors (a database dump that failed) say more than a generic one would.
    throw error instanceof BackupError ? error : new ArchiveError(`Building the archive failed: ${String(error)}`, { cause: error })
  }
  return {
    next: () => pieces.next().catch(convert),
    return: value => pieces.return(value),
    throw: error => pieces.throw(error).catch(convert),
    [Symbol.asyncIterator]() {
      return this
    },
    [Symbol.asyncDispose]: () => pieces[Symbol.asyncDispose]()
  }
}

async function* concat(sources: AsyncIterable<EntryChunk>[]): AsyncGenerator<EntryChunk> {
  for (const source of sources) yield* source
}
