import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream'
import zlib from 'node:zlib'
import yazl from 'yazl'
import { ArchiveError } from './errors.js'
import type { ArchiveEntry } from './files.js'
import type { ArchiveFormat } from './inputs.js'
import { padding, TAR_END, tarHeader } from './tar.js'

export const CONTENT_TYPES: Record<ArchiveFormat, string> = {
  zip: 'application/zip',
  'tar.gz': 'application/gzip',
  'tar.zst': 'application/zstd',
  tar: 'application/x-tar'
}

/** Read buffer per file: large enough to keep syscalls few, small enough to keep memory flat. */
const READ_CHUNK = 1024 * 1024

/**
 * A stream of the archive, produced as it is read: nothing is buffered beyond the streams'
 * high-water marks, so memory does not grow with the tree. Errors (a file vanished or changed)
 * destroy the stream with an ArchiveError.
 */
export function createArchive(entries: readonly ArchiveEntry[], format: ArchiveFormat, level: number | undefined): Readable {
  switch (format) {
    case 'zip':
      return zipArchive(entries, level ?? 6)
    case 'tar':
      return Readable.from(tarMembers(entries), { objectMode: false })
    case 'tar.gz':
      return compress(Readable.from(tarMembers(entries), { objectMode: false }), zlib.createGzip({ level: level ?? 6 }))
    case 'tar.zst':
      return compress(
        Readable.from(tarMembers(entries), { objectMode: false }),
        zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level ?? 3 } })
      )
  }
}

function compress(source: Readable, compressor: Transform): Readable {
  const output = new PassThrough()
  pipeline(source, compressor, output).catch(error => output.destroy(error as Error))
  return output
}

function zipArchive(entries: readonly ArchiveEntry[], level: number): Readable {
  const zip = new yazl.ZipFile()
  const output = new PassThrough({ highWaterMark: READ_CHUNK })
  const fail = (error: unknown): void => {
    output.destroy(error instanceof ArchiveError ? error : new ArchiveError(`Building the zip failed: ${String(error)}`, { cause: error }))
  }
  zip.on('error', fail)
  for (const entry of entries) {
    const options = { mtime: entry.mtime, mode: (entry.type === 'directory' ? 0o040000 : 0o100000) | entry.mode }
    if (entry.type === 'directory') {
      zip.addEmptyDirectory(entry.relativePath, options)
    } else if (entry.type === 'symlink') {
      // S_IFLNK in the unix mode makes unzip and Info-ZIP restore it as a link.
      zip.addBuffer(Buffer.from(entry.linkTarget ?? ''), entry.relativePath, {
        ...options,
        mode: 0o120000 | (entry.mode & 0o777),
        compress: false
      })
    } else {
      zip.addReadStreamLazy(entry.relativePath, { ...options, size: entry.size, compressionLevel: level }, callback => {
        const stream = readExactly(entry)
        stream.on('error', fail)
        callback(null, stream)
      })
    }
  }
  zip.end()
  zip.outputStream.on('error', fail)
  zip.outputStream.pipe(output)
  return output
}

async function* tarMembers(entries: readonly ArchiveEntry[]): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    yield tarHeader(entry)
    if (entry.type !== 'file') continue
    for await (const chunk of readExactly(entry)) yield chunk as Buffer
    const pad = padding(entry.size)
    if (pad > 0) yield Buffer.alloc(pad)
  }
  yield TAR_END
}

/** A file's bytes, failing loudly if it vanished or its size changed since it was listed. */
function readExactly(entry: ArchiveEntry): Readable {
  let seen = 0
  const source = createReadStream(entry.absolutePath, { highWaterMark: READ_CHUNK })
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length
      if (seen > entry.size) return callback(changedSize(entry, seen))
      callback(null, chunk)
    },
    flush(callback: TransformCallback) {
      callback(seen === entry.size ? null : changedSize(entry, seen))
    }
  })
  source.on('error', (error: NodeJS.ErrnoException) => {
    counter.destroy(
      error.code === 'ENOENT'
        ? new ArchiveError(
            `${entry.relativePath} disappeared while the archive was being built. Make sure nothing deletes files under 'path' during the backup.`
          )
        : new ArchiveError(`${entry.relativePath} could not be read (${error.code ?? error.message}).`, { cause: error })
    )
  })
  return source.pipe(counter)
}

function changedSize(entry: ArchiveEntry, seen: number): ArchiveError {
  return new ArchiveError(
    `${entry.relativePath} changed size while it was being archived (${entry.size} bytes when listed, ${seen}${seen > entry.size ? '+' : ''} read). Stop whatever writes to it before the backup, or exclude it with '!${entry.relativePath}'.`
  )
}
