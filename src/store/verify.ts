import { createHash } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import { objectSource } from './download.js'
import { ArchiveError, VerificationError } from '../errors.js'
import { readArchiveEntries, type DownloadSummary } from '../extract/read-archive.js'
import { retry, type RetryPolicy } from '../retry.js'
import { confirmObject, isTransientStoreError, objectUrl, type ExpectedObject, type HeadResult } from './s3.js'
import { formatBytes } from '../runner/summary.js'

/**
 * How the object is checked before the row says success. checksum: size, multipart ETag and the
 * store's CRC32; download: also reads the object back and compares its SHA-256; none: only that it
 * exists with the right size (no checksums are sent, for stores that refuse them).
 */
export const VERIFY_MODES = ['checksum', 'download', 'none'] as const
export type VerifyMode = (typeof VERIFY_MODES)[number]

/** The archive as uploaded: what reading the object back must give. */
export interface UploadedArchive {
  size: number
  sha256: string
  /** An age file: read back, it is hashed and never decrypted (the backup holds no identity). */
  encrypted?: boolean
}

/** Our own archive is read back without restore's bomb limits: the question is only whether it reads. */
const NO_LIMITS = { maxRatio: Number.POSITIVE_INFINITY, maxBytes: undefined }

/**
 * Streams the object back and reads every entry of it, contents included, as restore would
 * (names, links, zip CRCs, gzip/zstd integrity), writing nothing; an encrypted object is only
 * hashed, since the backup holds no identity to open it. Then compares the size and
 * SHA-256 of the bytes read with the archive that was uploaded. Throws VerificationError when the
 * store gives other bytes or an entry does not read back, StoreError when it cannot be read.
 */
export async function verifyByDownload(
  client: S3Client,
  bucket: string,
  head: HeadResult,
  key: string,
  expected: UploadedArchive,
  signal: AbortSignal
): Promise<UploadedArchive> {
  const where = objectUrl(bucket, key)
  const source = objectSource(client, bucket, key, head)
  let read: Pick<DownloadSummary, 'bytes' | 'sha256'>
  try {
    if (expected.encrypted) read = await hashObject(source.stream(signal))
    else {
      const entries = readArchiveEntries(source, { limits: NO_LIMITS, signal })
      let next = await entries.next()
      while (!next.done) next = await entries.next()
      read = next.value
    }
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error
    throw new VerificationError(
      `Read back, ${where} does not read as the archive that was uploaded: ${error.message} The store holds damaged or other bytes. It was left in the store as it is; re-run the backup.`,
      { cause: error }
    )
  }
  if (read.bytes !== expected.size || read.sha256 !== expected.sha256) {
    throw new VerificationError(
      `Read back, ${where} has ${formatBytes(read.bytes)} (${read.bytes} bytes) with SHA-256 ${read.sha256}, but the uploaded archive has ${expected.size} bytes with SHA-256 ${expected.sha256}: the store holds damaged or other bytes. It was left in the store as it is; re-run the backup.`
    )
  }
  return { size: read.bytes, sha256: read.sha256 }
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
      () => verifyByDownload(client, bucket, checked.head, key, expected, signal),
      error => !signal.aborted && isTransientStoreError(error),
      policy
    )
    parts.push(expected.encrypted ? 'SHA-256 of the object read back (encrypted: not decrypted)' : 'SHA-256 of the object read back')
  }
  return {
    checks: `${mode}: ${parts.join(', ')}`,
    summary: `${objectUrl(bucket, key)} verified (${mode}): ${parts.join(', ')}.`,
    storeChecksumMissing
  }
}

async function hashObject(stream: AsyncIterable<Buffer>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const piece of stream) {
    hash.update(piece)
    bytes += piece.length
  }
  return { bytes, sha256: hash.digest('hex') }
}
