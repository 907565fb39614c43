import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { PassThrough, type Readable } from 'node:stream'
import { PartHasher } from './digests.js'
import { VerificationError } from './errors.js'
import type { VerifyMode } from './inputs.js'
import { retry, type RetryPolicy } from './retry.js'
import { confirmObject, isTransientStoreError, objectUrl, storeError, type ExpectedObject } from './store.js'
import { formatBytes } from './summary.js'

/** The archive as uploaded: what reading the object back must give. */
export interface UploadedArchive {
  size: number
  sha256: string
}

/**
 * Reads the archive while it streams down, e.g. every entry of it, and rejects with a
 * VerificationError naming the first one that does not read back. Plugged into verifyByDownload.
 */
export type ArchiveReader = (archive: Readable, signal: AbortSignal) => Promise<void>

/** Bytes handed to the hashing worker at once: the upload's part size, so memory stays a few of them. */
const HASH_BLOCK = 8 * 1024 * 1024

/**
 * Streams the object back and compares its size and SHA-256 with the archive that was uploaded
 * (hashed on the worker, like the upload). With `readArchive`, the same bytes also go through it.
 * Throws VerificationError when the store gives other bytes, StoreError when it cannot be read.
 */
export async function verifyByDownload(
  client: S3Client,
  bucket: string,
  key: string,
  expected: UploadedArchive,
  signal: AbortSignal,
  readArchive?: ArchiveReader
): Promise<UploadedArchive> {
  const where = objectUrl(bucket, key)
  const hasher = new PartHasher({ partMd5: false, wholeMd5: false, partSha256: false })
  const reader = readArchive ? new PassThrough() : undefined
  const reading = reader && readArchive ? readArchive(reader, signal) : Promise.resolve()
  // A reader that is done takes no more bytes, and one that failed ends the download: neither holds it up.
  let readerDone = false
  let readerFailed = false
  const settled = reading.then(
    () => void (readerDone = true),
    () => void (readerDone = readerFailed = true)
  )
  let size = 0
  try {
    let body: Readable
    try {
      const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
      body = answer.Body as Readable
    } catch (error) {
      throw storeError(error, `read ${where} back to verify it`)
    }
    // Two blocks in shared memory, filled in turn: the worker reads one in place while the other fills.
    const blocks = [Buffer.from(new SharedArrayBuffer(HASH_BLOCK)), Buffer.from(new SharedArrayBuffer(HASH_BLOCK))]
    let block = blocks[0] as Buffer
    let filled = 0
    let hashed: Promise<unknown> = Promise.resolve()
    const hashBlock = async (): Promise<void> => {
      const full = block.subarray(0, filled)
      await hashed
      hashed = hasher.add(full)
      block = block === blocks[0] ? (blocks[1] as Buffer) : (blocks[0] as Buffer)
      filled = 0
    }
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (readerFailed) break
        size += chunk.length
        let offset = 0
        while (offset < chunk.length) {
          const copied = chunk.copy(block, filled, offset)
          filled += copied
          offset += copied
          if (filled === block.length) await hashBlock()
        }
        if (reader && !readerDone && !reader.write(chunk))
          await Promise.race([new Promise(resolve => reader.once('drain', resolve)), settled])
      }
    } catch (error) {
      throw signal.aborted ? signal.reason : storeError(error, `read ${where} back to verify it`)
    }
    // An entry that does not read back is the first thing to report; then whether the bytes are the archive's.
    if (readerFailed) await reading
    if (filled > 0) await hashBlock()
    await hashed
    reader?.end()
    const { sha256 } = await hasher.digests()
    if (size !== expected.size || sha256 !== expected.sha256) {
      throw new VerificationError(
        `Read back, ${where} has ${formatBytes(size)} (${size} bytes) with SHA-256 ${sha256}, but the uploaded archive has ${expected.size} bytes with SHA-256 ${expected.sha256}: the store holds damaged or other bytes. It was left in the store as it is; re-run the backup.`
      )
    }
    await reading
    return { size, sha256 }
  } finally {
    reader?.destroy()
    void hasher.close()
  }
}

/** What verification found, for the log and the job summary. */
export interface VerificationReport {
  /** What was compared, e.g. `checksum: size 1234 bytes, ETag, CRC32`. */
  checks: string
  /** One sentence for the log. */
  summary: string
  /** The store keeps no CRC32 (it ignores S3's additional checksums): verified without it. */
  storeChecksumMissing: boolean
}

/**
 * The check `verify` asks for, on an object whose upload completed. HeadObject always (size,
 * ETag, the store's CRC32, retried while the store cannot answer); `download` then reads it back.
 */
export async function verifyUploaded(
  client: S3Client,
  bucket: string,
  key: string,
  expected: ExpectedObject & UploadedArchive,
  mode: VerifyMode,
  policy: RetryPolicy,
  signal: AbortSignal
): Promise<VerificationReport> {
  const checked = await confirmObject(client, bucket, key, mode === 'none' ? { ...expected, etags: [], crc32s: [] } : expected, policy)
  const storeChecksumMissing = checked.checksum === 'absent'
  const parts = [`size ${expected.size} bytes`]
  if (mode !== 'none') parts.push('ETag', storeChecksumMissing ? 'no CRC32 (the store keeps none)' : 'CRC32')
  if (mode === 'download') {
    await retry(
      () => verifyByDownload(client, bucket, key, expected, signal),
      error => !signal.aborted && isTransientStoreError(error),
      policy
    )
    parts.push('SHA-256 of the object read back')
  }
  return {
    checks: `${mode}: ${parts.join(', ')}`,
    summary: `${objectUrl(bucket, key)} verified (${mode}): ${parts.join(', ')}.`,
    storeChecksumMissing
  }
}
