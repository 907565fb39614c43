import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
  type CreateMultipartUploadCommandOutput,
  type StorageClass,
  type S3Client
} from '@aws-sdk/client-s3'
import { compositeCrc32, crc32Base64, fullObjectCrc32 } from './checksums.js'
import { PartHasher, type PartDigests } from './digests.js'
import type { RetryPolicy } from '../retry.js'
import { abortUploadRetrying, multipartEtag, objectUrl, statusOf, storeError, verifyObject, type ExpectedObject } from './s3.js'

/**
 * Why not @aws-sdk/lib-storage's Upload: its abort() neither cancels parts in flight nor waits
 * for AbortMultipartUpload, and it hides the upload id until it is too late to save it. Here
 * the id reaches the runner state before the first part is sent, every request carries the
 * run's AbortSignal, and an abort is awaited before the error is reported.
 */

/**
 * First parts are 6 MiB (S3 asks for at least 5); the size doubles every 2000 parts, so 10 000 parts
 * reach ~360 GiB. With QUEUE_SIZE in flight and one filling, the upload holds 24 MiB.
 */
const BASE_PART_SIZE = 6 * 1024 * 1024
const PARTS_PER_SIZE_STEP = 2000
const MAX_PARTS = 10_000
/** Parts in flight at once; memory stays near (QUEUE_SIZE + 1) x part size whatever the archive size. */
const QUEUE_SIZE = 3
/** Aborting a failed upload waits this long for a store that is briefly unreachable. */
const ABORT_RETRY: RetryPolicy = { budgetMs: 3_000, initialDelayMs: 250, maxDelayMs: 1_000 }

export const SSE_MODES = ['AES256', 'aws:kms', 'aws:kms:dsse'] as const
export type SseMode = (typeof SSE_MODES)[number]

/** How the object is stored: class, server-side encryption, tags. */
export interface StorageOptions {
  storageClass: string | undefined
  sse: SseMode | undefined
  sseKmsKeyId: string | undefined
  /** Object tags, in input order. */
  tags: [string, string][]
}

export function partSize(partNumber: number): number {
  return BASE_PART_SIZE * 2 ** Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP)
}

export interface UploadTarget {
  bucket: string
  key: string
  contentType: string
  metadata: Record<string, string>
  storage: StorageOptions
  integrity: UploadIntegrity
}

/** What each request carries so the store can check the bytes it receives. */
export interface UploadIntegrity {
  /** S3 additional checksums: CRC32 per part, and the FULL_OBJECT CRC32 at completion. */
  checksums: boolean
  /** The ETag to compare with HeadObject; for stores that keep no CRC32 also each part's Content-MD5 and the whole MD5. */
  md5: boolean
  /**
   * Sign each part's SHA-256 (computed on the worker) rather than UNSIGNED-PAYLOAD. Needed over
   * plain http; over TLS, as the AWS CLI does, the transport and the checksums protect the bytes.
   */
  signedPayload: boolean
}

export interface UploadHooks {
  /** Called with the new upload id before any part is sent (save it: post aborts it). */
  onUploadCreated(uploadId: string): void
  /** Called once a failed or cancelled upload is aborted: nothing is left for post to clean up. */
  onUploadAborted(): void
  /** Called as each part is handed to the store, with the archive bytes sent so far. */
  onPartSent(bytesSent: number): void
  /** Called after each part is acknowledged, with the total bytes acknowledged so far. */
  onProgress(bytesUploaded: number, parts: number): void
  /** Called with what the object must look like, before CompleteMultipartUpload is sent. */
  onBeforeComplete(expected: ExpectedObject & { sha256: string }): void
  /** Called when the store refused the upload with S3's additional checksums, which then goes on without them. */
  onChecksumsRefused(reason: string): void
}

export interface UploadResult {
  size: number
  sha256: string
  parts: number
  expected: ExpectedObject
}

/** Storage class, encryption and tags apply to the whole object, so they are set when the upload is created. */
export function storageParameters(storage: StorageOptions): Partial<CreateMultipartUploadCommandInput> {
  return {
    ...(storage.storageClass ? { StorageClass: storage.storageClass as StorageClass } : {}),
    ...(storage.sse ? { ServerSideEncryption: storage.sse } : {}),
    ...(storage.sseKmsKeyId ? { SSEKMSKeyId: storage.sseKmsKeyId } : {}),
    ...(storage.tags.length > 0
      ? { Tagging: storage.tags.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&') }
      : {})
  }
}

/**
 * Streams `body` into a multipart upload without a temp file: parts are cut as the archive is
 * produced and sent QUEUE_SIZE at a time. On any error or abort the upload is aborted before
 * this rejects, so no parts are left behind in the store.
 */
export async function uploadStream(
  client: S3Client,
  target: UploadTarget,
  body: AsyncGenerator<Buffer>,
  signal: AbortSignal,
  hooks: UploadHooks
): Promise<UploadResult> {
  const where = objectUrl(target.bucket, target.key)
  const { integrity } = target
  let uploadId: string
  let checksums = integrity.checksums
  let storeKeepsChecksums = false
  try {
    // Not aborted by a cancel: a store that already received the request creates the upload
    // anyway, and only its id lets us abort it. A cancel is seen right after, before any part.
    const create = (withChecksums: boolean): Promise<CreateMultipartUploadCommandOutput> =>
      client.send(
        new CreateMultipartUploadCommand({
          Bucket: target.bucket,
          Key: target.key,
          ContentType: target.contentType,
          Metadata: target.metadata,
          ...storageParameters(target.storage),
          ...(withChecksums ? { ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' } : {})
        })
      )
    let created: CreateMultipartUploadCommandOutput
    try {
      created = await create(checksums)
    } catch (error) {
      // A store without S3's additional checksums (older MinIO, Ceph...) may refuse them outright:
      // the upload then goes on as before them, checked by size and ETag.
      if (!checksums || signal.aborted || !refusesCreateParameters(error)) throw error
      hooks.onChecksumsRefused(error instanceof Error ? `${error.name}: ${error.message}` : String(error))
      checksums = false
      created = await create(false)
    }
    if (!created.UploadId) throw new Error('the store returned no UploadId')
    uploadId = created.UploadId
    // S3 and MinIO confirm the algorithm: they will keep the object's CRC32, which covers what the
    // whole-object MD5 covered, so that second MD5 pass is only made for the other stores.
    storeKeepsChecksums = checksums && created.ChecksumAlgorithm === 'CRC32'
  } catch (error) {
    void body.return(undefined)
    throw signal.aborted ? signal.reason : storeError(error, `start the upload to ${where}`)
  }
  hooks.onUploadCreated(uploadId)

  // Stops parts in flight when one fails, as well as when the run is cancelled.
  const stop = new AbortController()
  const requestSignal = AbortSignal.any([signal, stop.signal])
  // MD5 is the slowest hash here (no CPU instruction for it): a store that keeps the CRC32 checks
  // each part and the whole object by it, and gives each part's MD5 as its ETag, so only the other
  // stores need our MD5s (Content-MD5, and the ETags to compare with HeadObject's).
  const md5s = integrity.md5 && !storeKeepsChecksums
  const hasher = new PartHasher({ partMd5: md5s, wholeMd5: md5s, partSha256: integrity.signedPayload })
  // Part buffers come back here once sent and hashed: the same few are reused for the whole upload.
  const spare: Buffer[] = []
  const completed: CompletedPart[] = []
  const partMd5s: Buffer[] = []
  const partCrc32s: number[] = []
  const partLengths: number[] = []
  const inFlight = new Set<Promise<void>>()
  let failure: unknown
  let size = 0
  let acknowledged = 0
  let completion: UploadResult | undefined

  const sendPart = (partNumber: number, data: Buffer): Promise<void> => {
    // The part goes out with its digests, so it is hashed (on the worker) before it is sent.
    const sending = hasher
      .add(data)
      .then(digests => {
        partCrc32s[partNumber - 1] = digests.crc32
        partLengths[partNumber - 1] = data.length
        if (digests.md5) partMd5s[partNumber - 1] = digests.md5
        const checksum = checksums ? { ChecksumCRC32: crc32Base64(digests.crc32) } : {}
        const command = new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: data,
          ...checksum,
          ...(digests.md5 ? { ContentMD5: digests.md5.toString('base64') } : {})
        })
        setPayloadHash(command, digests)
        return client.send(command, { abortSignal: requestSignal }).then(answer => {
          completed.push({ PartNumber: partNumber, ETag: answer.ETag, ...checksum })
          acknowledged += data.length
          hooks.onProgress(acknowledged, completed.length)
        })
      })
      .then(() => {
        spare.push(data)
      })
      .catch(error => {
        failure ??= error
        stop.abort()
      })
      .finally(() => inFlight.delete(sending))
    inFlight.add(sending)
    return sending
  }

  try {
    signal.throwIfAborted()
    let partNumber = 1
    const newPart = (): Buffer => {
      const reused = spare.pop()
      // Shared memory: the worker thread hashes the part in place instead of receiving a copy.
      return reused?.length === partSize(partNumber) ? reused : Buffer.from(new SharedArrayBuffer(partSize(partNumber)))
    }
    let part = newPart()
    let filled = 0
    // Each chunk is lent (see buffers.ts): it is copied into the part before the next is asked for.
    for await (const chunk of body) {
      if (failure || requestSignal.aborted) break
      size += chunk.length
      let offset = 0
      while (offset < chunk.length) {
        const copied = chunk.copy(part, filled, offset)
        filled += copied
        offset += copied
        if (filled === part.length) {
          if (partNumber >= MAX_PARTS) throw new Error(`the archive needs more than ${MAX_PARTS} parts`)
          void sendPart(partNumber, part)
          hooks.onPartSent(size - (chunk.length - offset))
          partNumber += 1
          part = newPart()
          filled = 0
          // Backpressure: reading waits while QUEUE_SIZE parts are in flight.
          while (inFlight.size >= QUEUE_SIZE) await Promise.race(inFlight)
        }
      }
    }
    if (!failure && !requestSignal.aborted && (filled > 0 || partNumber === 1)) {
      void sendPart(partNumber, part.subarray(0, filled))
      hooks.onPartSent(size)
    }
    await Promise.all(inFlight)
    if (signal.aborted) throw signal.reason
    if (failure) throw failure

    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
    const digests = await hasher.digests()
    const fullCrc32 = crc32Base64(fullObjectCrc32(partCrc32s, partLengths))
    const expected: ExpectedObject = {
      size,
      etags: !integrity.md5 ? [] : md5s ? [multipartEtag(partMd5s), ...(digests.md5 ? [digests.md5] : [])] : etagOfParts(completed),
      crc32s: integrity.checksums ? [fullCrc32, compositeCrc32(partCrc32s)] : []
    }
    hooks.onBeforeComplete({ ...expected, sha256: digests.sha256 })
    completion = { size, sha256: digests.sha256, parts: completed.length, expected }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
        // The store checks the whole object against it, and keeps it for HeadObject.
        ...(checksums ? { ChecksumCRC32: fullCrc32, ChecksumType: 'FULL_OBJECT' } : {}),
        // Never overwrite: S3, R2 and MinIO answer 412 when the key already exists.
        IfNoneMatch: '*'
      })
      // Not aborted by a cancel: once every part is in, finishing is quicker than undoing, and
      // the hard exit in cancellation.ts still bounds it (post verifies what it finds).
    )
    return completion
  } catch (error) {
    // A complete whose answer was lost (then retried: NoSuchUpload) may still have landed:
    // what is at the key decides.
    if (completion && (await isUploaded(client, target, completion.expected))) return completion
    stop.abort()
    void body.return(undefined)
    await Promise.allSettled(inFlight)
    // Bounded, so a cancel still ends in time; if the store stays unreachable, the upload id stays
    // in the state and post aborts it.
    await abortUploadRetrying(client, target.bucket, target.key, uploadId, ABORT_RETRY).then(hooks.onUploadAborted, () => {})
    if (signal.aborted) throw signal.reason
    throw storeError(error, `upload ${where}`)
  } finally {
    void hasher.close().catch(() => {})
  }
}

/** The multipart ETag of exactly these parts, from the MD5s the store gave as their ETags; none when it gave other ETags. */
function etagOfParts(parts: readonly CompletedPart[]): string[] {
  const md5s = parts.map(part => part.ETag?.replace(/"/g, '') ?? '')
  return md5s.every(md5 => /^[0-9a-f]{32}$/.test(md5)) ? [multipartEtag(md5s.map(md5 => Buffer.from(md5, 'hex')))] : []
}

async function isUploaded(client: S3Client, target: UploadTarget, expected: ExpectedObject): Promise<boolean> {
  try {
    await verifyObject(client, target.bucket, target.key, expected)
    return true
  } catch {
    return false
  }
}

/** The hash SigV4 signs for the part: its SHA-256 from the worker, or UNSIGNED-PAYLOAD (over TLS only). */
function setPayloadHash(command: UploadPartCommand, digests: PartDigests): void {
  const payloadHash = digests.sha256 ?? 'UNSIGNED-PAYLOAD'
  // Before signing (finalizeRequest): the signer takes a present x-amz-content-sha256 as is, instead
  // of hashing the 8+ MiB body on the main thread.
  command.middlewareStack.add(
    next => async args => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers) request.headers['x-amz-content-sha256'] = payloadHash
      return next(args)
    },
    { step: 'build', name: 'partPayloadHash' }
  )
}

/** A 400/501 refusing a parameter of CreateMultipartUpload: the only new ones are the checksum's. */
function refusesCreateParameters(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name ?? ''
  const status = statusOf(error)
  return status === 501 || (status === 400 && ['InvalidArgument', 'InvalidRequest', 'NotImplemented', 'InvalidHeader'].includes(name))
}
