import { free } from '../../archive/buffers.js'
import { ArchiveError } from '../../errors.js'
import { READ_CHUNK, type ArchiveEntry, type EntryChunk } from '../../archive/entry.js'
import { disappeared, unreadable } from './collect.js'
import { patternFor, shownName } from '../../archive/names.js'
import type { Listing } from './listing.js'
import { inOrder } from '../../threads/parallel.js'
import { workerThread } from '../../threads/thread.js'

/** What has been read so far, for progress lines and the summary. */
export interface ReadProgress {
  bytesRead: number
  filesRead: number
}

/** Small files share one request up to this many: one message instead of thousands of callbacks. */
const FILES_PER_BATCH = 512
/** Batches asked for ahead of the archive: memory is at most this many READ_CHUNKs. */
const BATCHES_AHEAD = 4

/**
 * The pieces of a batch as numbers, three per piece: the entry's index in the Listing, the offset
 * in the file and the length. Flat, because what a batch holds lives until the archive reaches
 * it: an entry, a piece object and two path strings per file, kept that long, outlived V8's young
 * generation. A tar of the bench's 1 GiB tree (24 000 files) promoted 8.6 MiB to the old
 * generation after the listing that way, and 4.1 MiB now.
 */
interface Batch {
  pieces: number[]
  bytes: number
}

/** What the reader found wrong with a piece: an errno code, or the size it saw instead of the listed one. */
interface ReadFailure {
  index: number
  code?: string
  seen?: number
}

/** What the worker thread answers for a batch. */
interface BatchRead {
  failure?: ReadFailure
}

/** A batch read into its slot. */
interface FilledBatch extends BatchRead {
  batch: Batch
  slot: SharedArrayBuffer
}

/** What the worker thread is asked to read (thread-jobs.ts). */
export interface ReadRequest {
  root: string
  /** The pieces' relative paths as their bytes, each ended by a NUL; empty for what is not a file. */
  paths: Buffer
  /** Per piece: offset, length, and PIECE_* flags. */
  pieces: number[]
  slot: SharedArrayBuffer
}

/** The piece is its file's last. */
export const PIECE_LAST = 1
/** The file's path is not UTF-8: the thread opens it by its bytes, not by a string. */
export const PIECE_RAW_PATH = 2

// Reading 24 000 small files through the threadpool (open, read, close: three round trips and
// three callbacks each) cost the main thread ~2 s per GiB. The worker thread reads a batch of them
// into a slot of shared memory (thread-jobs.ts), reused once the archive moved past it.

/**
 * Reads the entries' contents in order, a few batches ahead: small files many to a batch, a large
 * file in READ_CHUNK pieces. A file that vanished or changed size since it was listed fails with
 * an ArchiveError. Each chunk's data is lent: its slot is read into again once the consumer asks
 * for a chunk of a later batch.
 */
export async function* readEntries(listing: Listing, progress: ReadProgress): AsyncGenerator<EntryChunk> {
  const reader = new BatchReader(listing)
  let entry: ArchiveEntry | undefined
  let entryIndex = -1
  for await (const { batch, slot, failure } of inOrder(batchJobs(listing, reader), BATCHES_AHEAD)) {
    let at = 0
    for (let piece = 0; 3 * piece < batch.pieces.length; piece++) {
      const index = batch.pieces[3 * piece] as number
      const offset = batch.pieces[3 * piece + 1] as number
      const length = batch.pieces[3 * piece + 2] as number
      // The entry object is made here, when the archive reaches it: it dies young.
      if (index !== entryIndex) {
        entry = listing.entry(index)
        entryIndex = index
      }
      const current = entry as ArchiveEntry
      if (failure?.index === piece) throw readError(current, failure)
      const last = offset + length === current.size
      progress.bytesRead += length
      if (last && current.type === 'file') progress.filesRead += 1
      yield { index, entry: current, data: Buffer.from(slot, at, length), last }
      at += length
    }
    reader.release(slot)
  }
}

function* batchJobs(listing: Listing, reader: BatchReader): Generator<() => Promise<FilledBatch>> {
  let batch: Batch = { pieces: [], bytes: 0 }
  for (const index of listing.sorted()) {
    // Directories and symlinks have no content, but keep their place in the order.
    const size = listing.type(index) === 'file' ? listing.size(index) : 0
    for (let offset = 0; ; offset += READ_CHUNK) {
      const length = Math.min(READ_CHUNK, size - offset)
      if (batch.bytes + length > READ_CHUNK || batch.pieces.length >= 3 * FILES_PER_BATCH) {
        const full = batch
        yield () => reader.read(full)
        batch = { pieces: [], bytes: 0 }
      }
      batch.pieces.push(index, offset, length)
      batch.bytes += length
      if (offset + length === size) break
    }
  }
  const rest = batch
  if (rest.pieces.length > 0) yield () => reader.read(rest)
}

function readError(entry: ArchiveEntry, failure: ReadFailure): ArchiveError {
  if (failure.code === 'ENOENT') return disappeared(entry.relativePath, 'archived')
  // Opened without following links: a file replaced by one is not read through it.
  if (failure.code === 'ELOOP') {
    return new ArchiveError(
      `${shownName(entry.relativePath)} was replaced by a symlink while the archive was being built. Make sure nothing changes files under 'path' during the backup.`
    )
  }
  if (failure.code) return unreadable(entry.relativePath, failure.code)
  const seen = failure.seen ?? 0
  return new ArchiveError(
    `${shownName(entry.relativePath)} changed size while it was being archived (${entry.size} bytes when listed, ${seen}${seen > entry.size ? '+' : ''} read). Stop whatever writes to it before the backup, or exclude it with '!${patternFor(entry.relativePath)}'.`
  )
}

/** Reads batches on the worker thread, each into a free slot. */
class BatchReader {
  /** Slots of READ_CHUNK bytes: one per batch ahead, and the one being archived. */
  private readonly freeSlots: SharedArrayBuffer[] = []

  constructor(private readonly listing: Listing) {}

  async read(batch: Batch): Promise<FilledBatch> {
    const slot = this.freeSlots.pop() ?? new SharedArrayBuffer(READ_CHUNK)
    const { listing } = this
    const { pieces } = batch
    // Directories and symlinks are not opened: only their place in the batch matters.
    const isFile = (piece: number): boolean => listing.type(pieces[3 * piece] as number) === 'file'
    let pathBytes = 0
    for (let piece = 0; 3 * piece < pieces.length; piece++)
      pathBytes += (isFile(piece) ? listing.pathLength(pieces[3 * piece] as number) : 0) + 1
    // Its own memory: a view of Node's shared pool would send the whole pool to the thread.
    const paths = Buffer.allocUnsafeSlow(pathBytes)
    const request: ReadRequest = { root: listing.root, paths, pieces: [], slot }
    for (let piece = 0, at = 0; 3 * piece < pieces.length; piece++) {
      const index = pieces[3 * piece] as number
      const offset = pieces[3 * piece + 1] as number
      const length = pieces[3 * piece + 2] as number
      if (isFile(piece)) at += listing.copyPath(index, paths, at)
      paths[at++] = 0
      const flags = (offset + length === listing.size(index) ? PIECE_LAST : 0) | (listing.isNotUtf8(index) ? PIECE_RAW_PATH : 0)
      request.pieces.push(offset, length, flags)
    }
    try {
      const reading = workerThread.run<BatchRead>('read', request)
      // Posting copied the paths to the thread.
      free([paths])
      return { ...(await reading), batch, slot }
    } catch (error) {
      throw new ArchiveError(`Reading the files failed: ${String(error)}`, { cause: error })
    }
  }

  /** A slot whose chunks were all handed on and used. */
  release(slot: SharedArrayBuffer): void {
    this.freeSlots.push(slot)
  }
}
