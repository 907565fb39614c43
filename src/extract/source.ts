import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'

/**
 * Where an archive's bytes come from: read front to back once (`stream`, which is hashed and
 * extracted), plus small reads at given offsets, which only zip needs: its central directory is
 * at the end, and it alone says where each entry ends.
 */
export interface ArchiveSource {
  /** Bytes in the object. */
  readonly size: number
  /** What to call the object in messages. */
  readonly name: string
  /** The whole object, front to back. */
  stream(signal?: AbortSignal): AsyncIterable<Buffer>
  /** Bytes `start` to `end` (exclusive). */
  readRange(start: number, end: number, signal?: AbortSignal): Promise<Buffer>
}

/** A local file as a source: for tests and for measuring against tar and unzip. */
export async function fileSource(file: string): Promise<ArchiveSource> {
  const { size } = await stat(file)
  return {
    size,
    name: file,
    stream: signal => createReadStream(file, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }),
    async readRange(start, end) {
      const handle = await open(file, 'r')
      try {
        const buffer = Buffer.alloc(end - start)
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, start)
        return buffer.subarray(0, bytesRead)
      } finally {
        await handle.close()
      }
    }
  }
}
