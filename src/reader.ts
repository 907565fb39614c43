import { Worker } from 'node:worker_threads'
import { ArchiveError } from './errors.js'
import { unreadable, type ArchiveEntry } from './files.js'
import { inOrder } from './parallel.js'

/** A piece of an entry's content, in archive order. Directories and symlinks come as one empty piece. */
export interface EntryChunk {
  entry: ArchiveEntry
  data: Buffer
  /** The entry's final piece (its only one when the file fits in READ_CHUNK). */
  last: boolean
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

interface BatchRead {
  id: number
  buffer: ArrayBuffer
  failure?: ReadFailure
}

// Reading 24 000 small files through the threadpool (open, read, close: three round trips and
// three callbacks each) cost the main thread ~2 s per GiB. A worker reads a batch of them with
// plain synchronous calls into one buffer and hands it over without a copy. A last piece also
// asks for one byte more: a file that grew since it was listed shows up in the same pass.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const probe = Buffer.alloc(1)
parentPort.on('message', ({ id, pieces, bytes }) => {
  // Not zero-filled: every byte handed on is read from a file (a short read fails the batch).
  const view = Buffer.allocUnsafeSlow(bytes)
  const buffer = view.buffer
  let at = 0
  let failure
  for (let index = 0; index < pieces.length && !failure; index++) {
    if (!pieces[index]) continue
    const [path, offset, length, last] = pieces[index]
    let fd
    try {
      fd = fs.openSync(path, 'r')
      let filled = 0
      while (filled < length) {
        const read = fs.readSync(fd, view, at + filled, length - filled, offset + filled)
        if (read === 0) break
        filled += read
      }
      if (filled < length) failure = { index, seen: offset + filled }
      else if (last && fs.readSync(fd, probe, 0, 1, offset + length) > 0) failure = { index, seen: offset + length + 1 }
    } catch (error) {
      failure = { index, code: error.code || String(error) }
    } finally {
      if (fd !== undefined) fs.closeSync(fd)
    }
    at += length
  }
  parentPort.postMessage({ id, buffer, failure }, [buffer])
})
`

/**
 * Reads the entries' contents in order, a few batches ahead: small files many to a batch, a large
 * file in READ_CHUNK pieces. A file that vanished or changed size since it was listed fails with
 * an ArchiveError.
 */
export async function* readEntries(entries: readonly ArchiveEntry[]): AsyncGenerator<EntryChunk> {
  const reader = new BatchReader()
  try {
    for await (const { batch, buffer, failure } of inOrder(batchJobs(entries, reader), BATCHES_AHEAD)) {
      let at = 0
      for (const [index, { entry, length, last }] of batch.pieces.entries()) {
        if (failure?.index === index) throw readError(entry, failure)
        yield { entry, data: Buffer.from(buffer, at, length), last }
        at += length
      }
    }
  } finally {
    void reader.close()
  }
}

function* batchJobs(entries: readonly ArchiveEntry[], reader: BatchReader): Generator<() => Promise<BatchRead & { batch: Batch }>> {
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
        yield () => reader.read(full).then(read => ({ ...read, batch: full }))
        batch = { pieces: [], bytes: 0 }
      }
      const last = offset + length === entry.size
      batch.pieces.push({ entry, offset, length, last })
      batch.bytes += length
      if (last) break
    }
  }
  const rest = batch
  if (rest.pieces.length > 0) yield () => reader.read(rest).then(read => ({ ...read, batch: rest }))
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

/** The reading worker: batches go in, filled buffers come back in the order asked. */
class BatchReader {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true })
  private readonly waiting = new Map<number, { resolve(read: BatchRead): void; reject(error: unknown): void }>()
  private nextId = 0

  constructor() {
    this.worker.on('message', (read: BatchRead) => {
      this.waiting.get(read.id)?.resolve(read)
      this.waiting.delete(read.id)
    })
    this.worker.on('error', error => this.failAll(error))
    this.worker.on('exit', () => this.failAll(new Error('the file reader stopped')))
  }

  read(batch: Batch): Promise<BatchRead> {
    const id = this.nextId++
    // Directories and symlinks are not opened: only their place in the batch matters.
    const pieces: (PieceRequest | undefined)[] = batch.pieces.map(({ entry, offset, length, last }) =>
      entry.type === 'file' ? [entry.absolutePath, offset, length, last] : undefined
    )
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.worker.postMessage({ id, pieces, bytes: batch.bytes })
    })
  }

  close(): Promise<number> {
    return this.worker.terminate()
  }

  private failAll(error: unknown): void {
    for (const { reject } of this.waiting.values()) reject(new ArchiveError(`Reading the files failed: ${String(error)}`, { cause: error }))
    this.waiting.clear()
  }
}
