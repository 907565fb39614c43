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
   * The store is reached over plain http. Over TLS parts are sent with UNSIGNED-PAYLOAD, as the AWS
   * CLI does. Over http too when each part carries a checksum the store checks (the CRC32 it keeps,
   * or Content-MD5): the signature then adds a second pass over every byte on both sides, and what it
   * adds, protection from a network that rewrites the bytes, the archive's SHA-256 keeps end to end
   * (recorded on the row, checked by the restore and by verify: download). A part with no checksum
   * (verify: none) is signed with its SHA-256, computed on the worker.
   */
  plainHttp: boolean
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
  const created = await createUpload(client, target, body, signal, hooks)
  hooks.onUploadCreated(created.uploadId)
  const parts = new PartSender(client, target, created, signal, hooks)
  let completion: { result: UploadResult; fullCrc32: string } | undefined
  try {
    signal.throwIfAborted()
    const size = await cutIntoParts(body, parts, hooks)
    await parts.settled()
    completion = await parts.expectedObject(size)
    hooks.onBeforeComplete({ ...completion.result.expected, sha256: completion.result.sha256 })
    await completeUpload(client, target, created, parts.completed, completion.fullCrc32)
    return completion.result
  } catch (error) {
    // A complete whose answer was lost (then retried: NoSuchUpload) may still have landed:
    // what is at the key decides.
    if (completion && (await isUploaded(client, target, completion.result.expected))) return completion.result
    await abandon(client, target, created.uploadId, body, parts, hooks)
    if (signal.aborted) throw signal.reason
    throw storeError(error, `upload ${objectUrl(target.bucket, target.key)}`)
  } finally {
    parts.close()
  }
}

/** The upload as the store created it. */
interface CreatedUpload {
  uploadId: string
  /** S3's additional checksums are sent (not when the store refused them). */
  checksums: boolean
  /** The store confirmed it keeps the object's CRC32. */
  storeKeepsChecksums: boolean
}

/** CreateMultipartUpload, with the checksums unless the store refuses them. */
async function createUpload(
  client: S3Client,
  target: UploadTarget,
  body: AsyncGenerator<Buffer>,
  signal: AbortSignal,
  hooks: UploadHooks
): Promise<CreatedUpload> {
  let checksums = target.integrity.checksums
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
    // S3 and MinIO confirm the algorithm: they will keep the object's CRC32, which covers what the
    // whole-object MD5 covered, so that second MD5 pass is only made for the other stores.
    return { uploadId: created.UploadId, checksums, storeKeepsChecksums: checksums && created.ChecksumAlgorithm === 'CRC32' }
  } catch (error) {
    void body.return(undefined)
    throw signal.aborted ? signal.reason : storeError(error, `start the upload to ${objectUrl(target.bucket, target.key)}`)
  }
}

/**
 * Copies the body into parts and hands each full part to the sender, waiting while QUEUE_SIZE
 * are in flight (backpressure). Returns the archive's size.
 */
async function cutIntoParts(body: AsyncGenerator<Buffer>, parts: PartSender, hooks: UploadHooks): Promise<number> {
  let size = 0
  let partNumber = 1
  let part = parts.newPart(partNumber)
  let filled = 0
  // Each chunk is lent (see buffers.ts): it is copied into the part before the next is asked for.
  for await (const chunk of body) {
    if (parts.stopped) break
    size += chunk.length
    let offset = 0
    while (offset < chunk.length) {
      const copied = chunk.copy(part, filled, offset)
      filled += copied
      offset += copied
      if (filled === part.length) {
        if (partNumber >= MAX_PARTS) throw new Error(`the archive needs more than ${MAX_PARTS} parts`)
        parts.send(partNumber, part)
        hooks.onPartSent(size - (chunk.length - offset))
        partNumber += 1
        part = parts.newPart(partNumber)
        filled = 0
        await parts.room()
      }
    }
  }
  if (!parts.stopped && (filled > 0 || partNumber === 1)) {
    parts.send(partNumber, part.subarray(0, filled))
    hooks.onPartSent(size)
  }
  return size
}

/**
 * The parts of one upload: each is hashed (on the worker) and sent, QUEUE_SIZE at a time; the
 * first failure stops the others. Keeps what completing and verifying need: the parts' ETags,
 * CRC32s, lengths and MD5s.
 */
class PartSender {
  readonly completed: CompletedPart[] = []
  /** Stops parts in flight when one fails, as well as when the run is cancelled. */
  private readonly stop = new AbortController()
  private readonly requestSignal: AbortSignal
  private readonly hasher: PartHasher
  /** Whether our MD5s are needed (see the constructor). */
  private readonly md5s: boolean
  /** Part buffers come back here once sent and hashed: the same few are reused for the whole upload. */
  private readonly spare: Buffer[] = []
  private readonly partMd5s: Buffer[] = []
  private readonly partCrc32s: number[] = []
  private readonly partLengths: number[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private failure: unknown
  private acknowledged = 0

  constructor(
    private readonly client: S3Client,
    private readonly target: UploadTarget,
    private readonly created: CreatedUpload,
    private readonly signal: AbortSignal,
    private readonly hooks: UploadHooks
  ) {
    this.requestSignal = AbortSignal.any([signal, this.stop.signal])
    // MD5 is the slowest hash here (no CPU instruction for it): a store that keeps the CRC32 checks
    // each part and the whole object by it, and gives each part's MD5 as its ETag, so only the other
    // stores need our MD5s (Content-MD5, and the ETags to compare with HeadObject's).
    this.md5s = target.integrity.md5 && !created.storeKeepsChecksums
    // A part the store checks by its CRC32 or its Content-MD5 needs no signed SHA-256 as well (see plainHttp).
    const partsChecked = created.storeKeepsChecksums || this.md5s
    this.hasher = new PartHasher({
      partMd5: this.md5s,
      wholeMd5: this.md5s,
      partSha256: target.integrity.plainHttp && !partsChecked
    })
  }

  /** A part failed or the run was cancelled: no more parts are cut. */
  get stopped(): boolean {
    return this.failure !== undefined || this.requestSignal.aborted
  }

  newPart(partNumber: number): Buffer {
    const reused = this.spare.pop()
    // Shared memory: the worker thread hashes the part in place instead of receiving a copy.
    return reused?.length === partSize(partNumber) ? reused : Buffer.from(new SharedArrayBuffer(partSize(partNumber)))
  }

  send(partNumber: number, data: Buffer): void {
    const { target, created } = this
    const checksums = created.checksums
    // The part goes out with its digests, so it is hashed (on the worker) before it is sent.
    const sending = this.hasher
      .add(data)
      .then(digests => {
        this.partCrc32s[partNumber - 1] = digests.crc32
        this.partLengths[partNumber - 1] = data.length
        if (digests.md5) this.partMd5s[partNumber - 1] = digests.md5
        const checksum = checksums ? { ChecksumCRC32: crc32Base64(digests.crc32) } : {}
        const command = new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: created.uploadId,
          PartNumber: partNumber,
          Body: data,
          ...checksum,
          ...(digests.md5 ? { ContentMD5: digests.md5.toString('base64') } : {})
        })
        setPayloadHash(command, digests)
        return this.client.send(command, { abortSignal: this.requestSignal }).then(answer => {
          this.completed.push({ PartNumber: partNumber, ETag: answer.ETag, ...checksum })
          this.acknowledged += data.length
          this.hooks.onProgress(this.acknowledged, this.completed.length)
        })
      })
      .then(() => {
        this.spare.push(data)
      })
      .catch(error => {
        this.failure ??= error
        this.stop.abort()
      })
      .finally(() => this.inFlight.delete(sending))
    this.inFlight.add(sending)
  }

  /** Resolves once fewer than QUEUE_SIZE parts are in flight. */
  async room(): Promise<void> {
    while (this.inFlight.size >= QUEUE_SIZE) await Promise.race(this.inFlight)
  }

  /** Waits for every part; throws the cancel, or the first part's failure. */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight)
    if (this.signal.aborted) throw this.signal.reason
    if (this.failure) throw this.failure
  }

  /** What the complete object must look like, and the FULL_OBJECT CRC32 that CompleteMultipartUpload carries. */
  async expectedObject(size: number): Promise<{ result: UploadResult; fullCrc32: string }> {
    const { integrity } = this.target
    this.completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
    const digests = await this.hasher.digests()
    const fullCrc32 = crc32Base64(fullObjectCrc32(this.partCrc32s, this.partLengths))
    const expected: ExpectedObject = {
      size,
      etags: !integrity.md5
        ? []
        : this.md5s
          ? [multipartEtag(this.partMd5s), ...(digests.md5 ? [digests.md5] : [])]
          : etagOfParts(this.completed),
      crc32s: integrity.checksums ? [fullCrc32, compositeCrc32(this.partCrc32s)] : []
    }
    return { result: { size, sha256: digests.sha256, parts: this.completed.length, expected }, fullCrc32 }
  }

  /** Stops the parts in flight and waits for them to end. */
  async halt(): Promise<void> {
    this.stop.abort()
    await Promise.allSettled(this.inFlight)
  }

  close(): void {
    void this.hasher.close().catch(() => {})
  }
}

async function completeUpload(
  client: S3Client,
  target: UploadTarget,
  created: CreatedUpload,
  parts: CompletedPart[],
  fullCrc32: string
): Promise<void> {
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: target.bucket,
      Key: target.key,
      UploadId: created.uploadId,
      MultipartUpload: { Parts: parts },
      // The store checks the whole object against it, and keeps it for HeadObject.
      ...(created.checksums ? { ChecksumCRC32: fullCrc32, ChecksumType: 'FULL_OBJECT' } : {}),
      // Never overwrite: S3, R2 and MinIO answer 412 when the key already exists.
      IfNoneMatch: '*'
    })
    // Not aborted by a cancel: once every part is in, finishing is quicker than undoing, and
    // the hard exit in cancellation.ts still bounds it (post verifies what it finds).
  )
}

/** Stops everything and aborts the upload, so that no parts are left in the store. */
async function abandon(
  client: S3Client,
  target: UploadTarget,
  uploadId: string,
  body: AsyncGenerator<Buffer>,
  parts: PartSender,
  hooks: UploadHooks
): Promise<void> {
  const halted = parts.halt()
  void body.return(undefined)
  await halted
  // Bounded, so a cancel still ends in time; if the store stays unreachable, the upload id stays
  // in the state and post aborts it.
  await abortUploadRetrying(client, target.bucket, target.key, uploadId, ABORT_RETRY).then(hooks.onUploadAborted, () => {})
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

/** The hash SigV4 signs for the part: its SHA-256 from the worker, or UNSIGNED-PAYLOAD (see plainHttp). */
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
