import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import type { ArchiveSource } from '../extract/source.js'
import { objectUrl, storeError, type HeadResult } from './s3.js'

/**
 * An object in the store as an archive source: one GetObject streamed front to back, and ranged
 * GetObjects for zip's central directory. Every request names the ETag HeadObject reported, so an
 * object replaced meanwhile fails the restore instead of mixing two archives.
 */
export function objectSource(client: S3Client, bucket: string, key: string, head: HeadResult): ArchiveSource {
  const where = objectUrl(bucket, key)
  const get = async (range: string | undefined, signal: AbortSignal | undefined): Promise<AsyncIterable<Uint8Array>> => {
    try {
      const answer = await client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(head.etag ? { IfMatch: head.etag } : {}),
          ...(range ? { Range: range } : {})
        }),
        signal ? { abortSignal: signal } : {}
      )
      if (!answer.Body) throw new Error('the store returned no body')
      return answer.Body as AsyncIterable<Uint8Array>
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw storeError(error, `download ${where}`)
    }
  }
  return {
    size: head.size,
    name: where,
    async *stream(signal) {
      for await (const piece of await get(undefined, signal)) yield Buffer.isBuffer(piece) ? piece : Buffer.from(piece)
    },
    async readRange(start, end, signal) {
      if (end <= start) return Buffer.alloc(0)
      const pieces: Buffer[] = []
      for await (const piece of await get(`bytes=${start}-${end - 1}`, signal)) pieces.push(Buffer.from(piece))
      return Buffer.concat(pieces)
    }
  }
}
