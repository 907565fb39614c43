import { ArchiveError } from './errors.js'
import { absolutePathOf, unreadable, type ArchiveEntry } from './files.js'
import { inOrder } from './parallel.js'
import { workerThread } from './thread.js'

/** A piece of an entry's content, in archive order. Directories and symlinks come as one empty piece. */
export interface EntryChunk {
  entry: ArchiveEntry
  /** Lent (see buffers.ts): valid until the next chunk is asked for. */
  data: Buffer
  /** The entry's final piece (its only one when the file fits in READ_CHUNK). */
  last: boolean
}

/** What has been read so far, for progress lines and the summary. */
export interface ReadProgress {
  bytesRead: number
  filesRead: number
}

/** Largest read: a file is read in pieces of this size, each also one compression job. */
export const READ_CHUNK = 1024 * 1024
/** Small files share one request up to this many: one message instead of thousands of callbacks. */
const FILES_PER_BATCH = 512
/** Batches asked for ahead of the archive: memory is at most this many READ_CHUNKs. */
const BATCHES_AHEAD = 4

/** One piece to read: [absolute path, offset, length, whether it is the file's last piece]. */
type PieceRequest = [string, number, number, boolean]

interface Batch {
  pieces: { entry: ArchiveEntry; offset: number; length: number; last: boolean }[]
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

// Reading 24 000 small files through the threadpool (open, read, close: three round trips and
// three callbacks each) cost the main thread ~2 s per GiB. The worker thread reads a batch of them
// into a slot of shared memory (thread-jobs.ts), reused once the archive moved past it.

/**
 * Reads the entries' contents in order, a few batches ahead: small files many to a batch, a large
 * file in READ_CHUNK pieces. A file that vanished or changed size since it was listed fails with
 * an ArchiveError. Each chunk's data is lent: its slot is read into again once the consumer asks
 * for a chunk of a later batch.
 */
export async function* readEntries(entries: Iterable<ArchiveEntry>, progress: ReadProgress): AsyncGenerator<EntryChunk> {
  const reader = new BatchReader()
  for await (const { batch, slot, failure } of inOrder(batchJobs(entries, reader), BATCHES_AHEAD)) {
    let at = 0
    for (const [index, { entry, length, last }] of batch.pieces.entries()) {
      if (failure?.index === index) throw readError(entry, failure)
      progress.bytesRead += length
      if (last && entry.type === 'file') progress.filesRead += 1
      yield { entry, data: Buffer.from(slot, at, length), last }
      at += length
    }
    reader.release(slot)
  }
}

function* batchJobs(entries: Iterable<ArchiveEntry>, reader: BatchReader): Generator<() => Promise<FilledBatch>> {
  let batch: Batch = { pieces: [], bytes: 0 }
  for (const entry of entries) {
    // Directories and symlinks have no content, but keep their place in the order.
    if (entry.type !== 'file') {
      batch.pieces.push({ entry, offset: 0, length: 0, last: true })
      continue
    }
    for (let offset = 0; ; offset += READ_CHUNK) {
      const length = Math.min(READ_CHUNK, entry.size - offset)
      if (batch.bytes + length > READ_CHUNK || batch.pieces.length >= FILES_PER_BATCH) {
        const full = batch
        yield () => reader.read(full)
        batch = { pieces: [], bytes: 0 }
      }
      const last = offset + length === entry.size
      batch.pieces.push({ entry, offset, length, last })
      batch.bytes += length
      if (last) break
    }
  }
  const rest = batch
  if (rest.pieces.length > 0) yield () => reader.read(rest)
}

function readError(entry: ArchiveEntry, failure: ReadFailure): ArchiveError {
  if (failure.code === 'ENOENT') {
    return new ArchiveError(
      `${entry.relativePath} disappeared while the archive was being built. Make sure nothing deletes files under 'path' during the backup.`
    )
  }
  if (failure.code) return unreadable(entry.relativePath, failure.code)
  const seen = failure.seen ?? 0
  return new ArchiveError(
    `${entry.relativePath} changed size while it was being archived (${entry.size} bytes when listed, ${seen}${seen > entry.size ? '+' : ''} read). Stop whatever writes to it before the backup, or exclude it with '!${entry.relativePath}'.`
  )
}

/** Reads batches on the worker thread, each into a free slot. */
class BatchReader {
  /** Slots of READ_CHUNK bytes: one per batch ahead, and the one being archived. */
  private readonly freeSlots: SharedArrayBuffer[] = []

  async read(batch: Batch): Promise<FilledBatch> {
    const slot = this.freeSlots.pop() ?? new SharedArrayBuffer(READ_CHUNK)
    // Directories and symlinks are not opened: only their place in the batch matters.
    const pieces: (PieceRequest | undefined)[] = batch.pieces.map(({ entry, offset, length, last }) =>
      entry.type === 'file' ? [absolutePathOf(entry), offset, length, last] : undefined
    )
    try {
      const read = await workerThread.run<BatchRead>('read', { pieces, slot })
      return { ...read, batch, slot }
    } catch (error) {
      throw new ArchiveError(`Reading the files failed: ${String(error)}`, { cause: error })
    }
  }

  /** A slot whose chunks were all handed on and used. */
  release(slot: SharedArrayBuffer): void {
    this.freeSlots.push(slot)
  }
}
