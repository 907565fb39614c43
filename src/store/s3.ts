import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException
} from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { createHash } from 'node:crypto'
import { BackupError, messageOf, StoreError, VerificationError } from '../errors.js'
import type { StoreLocation } from './inputs.js'
import { retry, type RetryPolicy } from '../retry.js'

/** Socket errors that mean the store could not be reached, not that it refused the request. */
const NETWORK_CODES = ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE']

export type StoreSettings = Pick<StoreLocation, 'region' | 'endpoint' | 'forcePathStyle' | 'credentials'>

/** Short requests (head, abort, list) give up after this long: post must stay inside the cancel budget. */
export const CONTROL_REQUEST_TIMEOUT_MS = 10_000

export function createS3Client(settings: StoreSettings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    maxAttempts: 4,
    // The upload computes its own checksums off the main thread (digests.ts): the SDK must not add a
    // second one, nor re-hash downloads (the download check compares a SHA-256 of its own).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // With `Expect: 100-continue` (the SDK's default for bodies of 2 MB or more), the SDK sends each
    // request on an Agent of its own that does not keep the connection (smithy-typescript#1754):
    // a new TCP connection, and TLS handshake, for every part. Without it the parts reuse the
    // handler's kept-alive connections; a part the store refuses has its body sent for nothing.
    expectContinueHeader: false,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 120_000 })
  })
}

/** Whether requests to the store travel over TLS (AWS itself, or an https endpoint). */
export function usesTls(settings: Pick<StoreSettings, 'endpoint'>): boolean {
  return !settings.endpoint || settings.endpoint.startsWith('https:')
}

/** `s3://bucket/key`, for messages. */
export function objectUrl(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`
}

export interface HeadResult {
  size: number
  etag: string
  /** Server-side encryption the store applied (the bucket's default or ours), if it says. */
  sse: string | undefined
  /** User metadata (`x-amz-meta-*`), keys lower-cased. */
  metadata: Record<string, string>
  /** The object's CRC32 as the store reports it (with ChecksumMode), if it keeps one. */
  crc32: string | undefined
}

export async function headObject(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<HeadResult | undefined> {
  const timeout = AbortSignal.timeout(CONTROL_REQUEST_TIMEOUT_MS)
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }), {
      abortSignal: signal ? AbortSignal.any([signal, timeout]) : timeout
    })
    return {
      size: head.ContentLength ?? -1,
      etag: head.ETag ?? '',
      sse: head.ServerSideEncryption,
      metadata: head.Metadata ?? {},
      crc32: head.ChecksumCRC32
    }
  } catch (error) {
    if (statusOf(error) === 404) return undefined
    if (signal?.aborted) throw signal.reason
    throw storeError(error, `check ${objectUrl(bucket, key)}`)
  }
}

/**
 * Whether the key is already taken, before spending an upload on it. S3 answers 403 instead of
 * 404 for a missing key when the credentials lack s3:ListBucket, so 403 means "unknown": the
 * If-None-Match on CompleteMultipartUpload still guarantees nothing is overwritten.
 */
export async function keyIsTaken(client: S3Client, bucket: string, key: string, signal: AbortSignal): Promise<boolean> {
  try {
    return (await headObject(client, bucket, key, signal)) !== undefined
  } catch (error) {
    if (error instanceof StoreError && statusOf(error.cause) === 403) return false
    throw error
  }
}

/** Aborts one multipart upload; one that is already gone counts as aborted. */
export async function abortUpload(client: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), {
      abortSignal: AbortSignal.timeout(CONTROL_REQUEST_TIMEOUT_MS)
    })
  } catch (error) {
    if (statusOf(error) === 404) return
    throw storeError(error, `abort the unfinished upload of ${objectUrl(bucket, key)}`)
  }
}

/**
 * Deletes one object (the prune's only change to the store). A key that is already gone counts as
 * deleted: S3 answers 204 either way.
 */
export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: AbortSignal.timeout(CONTROL_REQUEST_TIMEOUT_MS)
    })
  } catch (error) {
    if (statusOf(error) === 404) return
    if (statusOf(error) === 403) {
      throw new StoreError(
        `Could not delete ${objectUrl(bucket, key)}: access denied (HTTP 403). The prune's credentials need s3:DeleteObject on the prefix's objects.`,
        { cause: error }
      )
    }
    throw storeError(error, `delete ${objectUrl(bucket, key)}`)
  }
}

/** The keys under a prefix, a page of 1000 at a time: what the store holds, to compare with the rows. */
export async function listKeys(client: S3Client, bucket: string, prefix: string, policy: RetryPolicy): Promise<Set<string>> {
  const keys = new Set<string>()
  let token: string | undefined
  do {
    const page = await retry(
      async () => {
        try {
          return await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), {
            abortSignal: AbortSignal.timeout(CONTROL_REQUEST_TIMEOUT_MS)
          })
        } catch (error) {
          if (statusOf(error) === 403) {
            throw new StoreError(
              `Could not list ${objectUrl(bucket, prefix)}: access denied (HTTP 403). The prune's credentials need s3:ListBucket on the bucket (it may be limited to the prefix).`,
              { cause: error }
            )
          }
          throw storeError(error, `list ${objectUrl(bucket, prefix)}`)
        }
      },
      isTransientStoreError,
      policy
    )
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.add(object.Key)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return keys
}

/** Open multipart uploads of exactly this key. */
export async function openUploads(
  client: S3Client,
  bucket: string,
  key: string
): Promise<{ uploadId: string; initiated: Date | undefined }[]> {
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }), {
      abortSignal: AbortSignal.timeout(CONTROL_REQUEST_TIMEOUT_MS)
    })
    return (listed.Uploads ?? [])
      .filter(upload => upload.Key === key && upload.UploadId)
      .map(upload => ({ uploadId: upload.UploadId as string, initiated: upload.Initiated }))
  } catch (error) {
    throw storeError(error, `list unfinished uploads of ${objectUrl(bucket, key)}`)
  }
}

/** What the store should report for the object we uploaded. Empty lists: not checked (verify: none). */
export interface ExpectedObject {
  size: number
  /** ETag forms we accept: S3's `md5(part md5s)-N`, and the whole object's MD5 that some stores return. */
  etags: string[]
  /** CRC32 forms we accept: the FULL_OBJECT one we asked for, and the COMPOSITE one a store may keep instead. */
  crc32s: string[]
}

/** What HeadObject confirmed besides the size. */
export interface VerifiedObject {
  head: HeadResult
  /** matched: the store's CRC32 is ours; absent: the store keeps none (it ignores S3's additional checksums). */
  checksum: 'matched' | 'absent' | 'unchecked'
}

/** The multipart ETag S3 computes: MD5 of the concatenated binary part MD5s, then `-<part count>`. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`
}

/**
 * Confirms with HeadObject that the object at the key is the one we uploaded: same size, an ETag
 * we computed where the store returns an MD5-style one, and our CRC32 where the store keeps one.
 */
export async function verifyObject(client: S3Client, bucket: string, key: string, expected: ExpectedObject): Promise<VerifiedObject> {
  const head = await headObject(client, bucket, key)
  const where = objectUrl(bucket, key)
  if (!head) throw new VerificationError(`The upload finished but ${where} does not exist; the store lost or refused the object.`)
  if (head.size !== expected.size) {
    throw new VerificationError(`${where} has ${head.size} bytes but ${expected.size} were uploaded; the object is incomplete.`)
  }
  const etag = head.etag.replace(/"/g, '').toLowerCase()
  // With SSE-KMS (ours or the bucket's default) S3's part ETags, and so the multipart ETag, are
  // not MD5 digests of the data although they look like one: only the size can be checked.
  const etagIsDigest = !head.sse?.startsWith('aws:kms')
  // Only forms we computed can be compared: the whole object's MD5 is skipped for stores that keep our CRC32.
  const comparable = expected.etags.filter(form => form.includes('-') === etag.includes('-'))
  if (etagIsDigest && /^[0-9a-f]{32}(-\d+)?$/.test(etag) && comparable.length > 0 && !comparable.includes(etag)) {
    throw new VerificationError(
      `${where} has ETag ${etag}, which does not match the uploaded archive (${comparable.join(' or ')}); the object is not the one this run uploaded.`
    )
  }
  if (expected.crc32s.length === 0) return { head, checksum: 'unchecked' }
  if (!head.crc32) return { head, checksum: 'absent' }
  if (!expected.crc32s.includes(head.crc32)) {
    throw new VerificationError(
      `${where} has CRC32 checksum ${head.crc32} in the store, but the uploaded archive's is ${expected.crc32s[0]}; the store holds other bytes than this run uploaded. Re-run the backup.`
    )
  }
  return { head, checksum: 'matched' }
}

/**
 * verifyObject, retried while the store cannot answer. If it never does, the object may well be
 * complete: the error says it was left in the store, for the row and the user to know.
 */
export async function confirmObject(
  client: S3Client,
  bucket: string,
  key: string,
  expected: ExpectedObject,
  policy: RetryPolicy
): Promise<VerifiedObject> {
  try {
    return await retry(() => verifyObject(client, bucket, key, expected), isTransientStoreError, policy)
  } catch (error) {
    if (!isTransientStoreError(error)) throw error
    throw new StoreError(
      `${messageOf(error)} The store could not confirm the upload of ${objectUrl(bucket, key)}, so it was left in the store as it is: check it, or delete it, and re-run.`,
      { cause: error }
    )
  }
}

/** Aborts the upload, retried while the store cannot answer. */
export function abortUploadRetrying(client: S3Client, bucket: string, key: string, uploadId: string, policy: RetryPolicy): Promise<void> {
  return retry(() => abortUpload(client, bucket, key, uploadId), isTransientStoreError, policy)
}

/** The store failed or could not be reached (5xx, throttling, network): worth another try. */
export function isTransientStoreError(error: unknown): boolean {
  const cause = error instanceof StoreError ? error.cause : error
  if (cause instanceof BackupError) return false
  const status = statusOf(cause)
  if (status !== undefined) return status >= 500 || status === 429
  const code = (cause as { code?: string } | undefined)?.code ?? ''
  const name = (cause as { name?: string } | undefined)?.name ?? ''
  return NETWORK_CODES.includes(code) || name === 'TimeoutError'
}

export function statusOf(error: unknown): number | undefined {
  if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode
  const metadata = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
  return metadata?.httpStatusCode
}

/** Turns an SDK error into a StoreError saying what failed and what to check; our own errors pass through. */
export function storeError(error: unknown, action: string): BackupError {
  if (error instanceof BackupError) return error
  const name = (error as { name?: string } | undefined)?.name ?? ''
  const code = (error as { code?: string } | undefined)?.code ?? ''
  const message = error instanceof Error ? error.message : String(error)
  const status = statusOf(error)
  const prefix = `Could not ${action}`
  switch (name) {
    case 'NoSuchBucket':
      return new StoreError(`${prefix}: the bucket does not exist. Check 'bucket' (and 'region' / 'endpoint').`, { cause: error })
    case 'InvalidAccessKeyId':
      return new StoreError(`${prefix}: the store does not know the access key id. Check 'aws-access-key-id' or the credentials step.`, {
        cause: error
      })
    case 'SignatureDoesNotMatch':
      return new StoreError(
        `${prefix}: the store rejected the request signature; the secret access key is wrong. Check 'aws-secret-access-key'.`,
        { cause: error }
      )
    case 'AccessDenied':
    case 'Forbidden':
      return new StoreError(
        `${prefix}: access denied. The credentials need s3:PutObject, s3:GetObject (HeadObject), s3:AbortMultipartUpload and s3:ListBucketMultipartUploads on the bucket.`,
        { cause: error }
      )
    case 'PreconditionFailed':
      return new StoreError(
        `${prefix}: an object already exists at that key and the action never overwrites. Use a 'key' that includes {timestamp} or {dispatch_id}.`,
        { cause: error }
      )
    case 'BadDigest':
    case 'XAmzContentSHA256Mismatch':
      return new StoreError(
        `${prefix}: the store received other bytes than were sent (${message}): the checksum computed from the archive does not match what arrived, so the data was damaged on the way. Nothing was stored; re-run the backup.`,
        { cause: error }
      )
    case 'CredentialsProviderError':
      return new StoreError(
        `${prefix}: no AWS credentials found. Set 'aws-access-key-id' / 'aws-secret-access-key', or run aws-actions/configure-aws-credentials first.`,
        { cause: error }
      )
  }
  if (rejectsChecksums(error)) {
    return new StoreError(
      `${prefix}: the store does not accept S3's additional checksums (${name}: ${message}). Set 'verify: none' to upload without them; the object is then checked by its size only.`,
      { cause: error }
    )
  }
  if (NETWORK_CODES.includes(code) || name === 'TimeoutError') {
    return new StoreError(
      `${prefix}: the store is not reachable (${code || name}). Check 'endpoint' and 'region', and that the runner can reach the store.`,
      { cause: error }
    )
  }
  if (status === 403) {
    return new StoreError(
      `${prefix}: access denied (HTTP 403). Check 'aws-access-key-id' / 'aws-secret-access-key' and that they may read and write the bucket.`,
      { cause: error }
    )
  }
  return new StoreError(
    `${prefix}: ${name && name !== 'Error' && name !== 'Unknown' ? `${name}: ` : ''}${message}${status ? ` (HTTP ${status})` : ''}`,
    { cause: error }
  )
}

/** A store that refuses the x-amz-checksum-* headers (older MinIO and Ceph, some S3-compatibles) rather than the request. */
export function rejectsChecksums(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name ?? ''
  const status = statusOf(error)
  const refusal = ['InvalidArgument', 'InvalidRequest', 'NotImplemented', 'InvalidHeader'].includes(name) || status === 501
  return refusal && /checksum/i.test(error instanceof Error ? error.message : String(error))
}
