import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { mkdtemp, open, rm } from 'node:fs/promises'
import path from 'node:path'
import { StorageError, VerificationError } from '../errors.js'
import type { ArchiveItem } from '../extract/entry.js'
import {
  objectPath,
  parseStorageManifest,
  STORAGE_FOLDER,
  STORAGE_MANIFEST_PATH,
  type StorageManifest,
  type StorageObjectRecord
} from '../sources/storage/manifest.js'
import { storageError } from '../sources/storage/source.js'
import { createS3Client, statusOf } from '../store/s3.js'
import type { StorageRestoreTarget } from './inputs.js'

/** Objects up to this size go up in one PutObject; larger ones in parts of this size. */
const PART_SIZE = 16 * 1024 * 1024
/** Objects uploaded at once. */
const UPLOADS_IN_FLIGHT = 4
/** Taken keys named in the refusal; the count says how many there are. */
const CONFLICTS_SHOWN = 5

/** The spool's directory names start with this (under RUNNER_TEMP). */
export const STORAGE_SPOOL_PREFIX = 'supabase-s3-restore-storage-'

interface Spooled {
  file: string
  size: number
  sha256: string
}

/** An object checked against the manifest, and where it goes. */
interface Planned {
  record: StorageObjectRecord
  bucket: string
  file: string
}

/** What the Storage part of a restore did. */
export interface StorageRestoreResult {
  objects: number
  bytes: number
  buckets: { from: string; to: string; objects: number }[]
}

/**
 * The archive's storage/ part, put back into Supabase Storage. The manifest, which holds each
 * object's content type and metadata, comes last in the archive, so the objects are spooled to
 * the runner's disk as they are read (each hashed on the way); once the archive is read and its
 * SHA-256 matched, check() compares every object with the manifest and refuses keys that are
 * taken, before anything is written; upload() then puts them back, with their content type and
 * metadata. Everything else goes on to the files.
 */
export class StoragePart {
  private readonly client: S3Client
  private spoolDirectory: string | undefined
  private readonly spooled = new Map<string, Spooled>()
  private manifestText: string | undefined
  private plan: Planned[] | undefined

  constructor(
    private readonly target: StorageRestoreTarget,
    private readonly spoolParent: string,
    private readonly signal: AbortSignal
  ) {
    this.client = createS3Client(target.settings)
  }

  /** Before the download: the target buckets named in `storage-buckets` exist. (`*` is checked once the manifest says which.) */
  async checkNamedBuckets(): Promise<void> {
    if (this.target.buckets.all) return
    for (const { to } of this.target.buckets.pairs) await this.checkBucket(to)
  }

  async *route(items: AsyncIterable<ArchiveItem>): AsyncGenerator<ArchiveItem> {
    for await (const item of items) {
      if (item.path === STORAGE_MANIFEST_PATH) this.manifestText = await text(item.data)
      else if (item.path.startsWith(`${STORAGE_FOLDER}/`)) await this.spool(item)
      else yield item
    }
  }

  /**
   * With the archive read: every object has the size and SHA-256 the manifest records, every
   * target bucket exists, and no key is taken (unless allow-overwrite-storage). Throws before
   * anything is written.
   */
  async check(): Promise<void> {
    if (this.manifestText === undefined) {
      throw new StorageError(
        `The archive has no ${STORAGE_MANIFEST_PATH}: it holds no Storage objects (the backup was made without 'storage-buckets'); nothing was restored.`
      )
    }
    let manifest: StorageManifest
    try {
      manifest = parseStorageManifest(this.manifestText)
    } catch (error) {
      throw new StorageError(`${(error as Error).message} Nothing was restored.`)
    }
    const targets = this.targets(manifest)
    const plan: Planned[] = []
    const expected = new Set<string>()
    for (const record of manifest.objects) {
      const bucket = targets.get(record.bucket)
      if (bucket === undefined) continue
      const name = objectPath(record.bucket, record.key)
      expected.add(name)
      const spooled = this.spooled.get(name)
      if (!spooled)
        throw new VerificationError(`${STORAGE_MANIFEST_PATH} lists ${name}, but the archive does not hold it; nothing was restored.`)
      if (spooled.size !== record.size || spooled.sha256 !== record.sha256) {
        throw new VerificationError(
          `${name} has ${spooled.size} bytes with SHA-256 ${spooled.sha256} in the archive, but the manifest records ${record.size} bytes with ${record.sha256}; nothing was restored.`
        )
      }
      plan.push({ record, bucket, file: spooled.file })
    }
    const unlisted = [...this.spooled.keys()].find(name => !expected.has(name))
    if (unlisted)
      throw new VerificationError(`The archive holds ${unlisted}, which ${STORAGE_MANIFEST_PATH} does not list; nothing was restored.`)
    for (const bucket of new Set(targets.values())) await this.checkBucket(bucket)
    if (!this.target.allowOverwrite) await this.refuseTakenKeys(plan)
    this.plan = plan
  }

  /** Puts every checked object back, a few at a time; check() ran first. */
  async upload(onProgress: (objects: number) => void): Promise<StorageRestoreResult> {
    const plan = this.plan ?? []
    let next = 0
    let done = 0
    let bytes = 0
    const worker = async (): Promise<void> => {
      while (next < plan.length) {
        const planned = plan[next++] as Planned
        this.signal.throwIfAborted()
        await this.uploadOne(planned)
        done += 1
        bytes += planned.record.size
        onProgress(done)
      }
    }
    await Promise.all(Array.from({ length: Math.min(UPLOADS_IN_FLIGHT, plan.length) }, worker))
    const counts = new Map<string, { from: string; to: string; objects: number }>()
    for (const { record, bucket } of plan) {
      const count = counts.get(record.bucket) ?? { from: record.bucket, to: bucket, objects: 0 }
      count.objects += 1
      counts.set(record.bucket, count)
    }
    return { objects: plan.length, bytes, buckets: [...counts.values()] }
  }

  /** Removes the spool, whatever happened. */
  async close(): Promise<void> {
    if (this.spoolDirectory) await rm(this.spoolDirectory, { recursive: true, force: true })
  }

  /** The archived buckets to restore, and the bucket each goes into. */
  private targets(manifest: StorageManifest): Map<string, string> {
    const archived = manifest.buckets.map(bucket => bucket.name)
    const { buckets } = this.target
    if (buckets.all) return new Map(archived.map(name => [name, name]))
    const missing = buckets.pairs.find(pair => !archived.includes(pair.from))
    if (missing) {
      throw new StorageError(
        `Input 'storage-buckets' names the bucket '${missing.from}', which the archive does not hold (it holds ${archived.length > 0 ? archived.join(', ') : 'no buckets'}); nothing was restored.`
      )
    }
    return new Map(buckets.pairs.map(pair => [pair.from, pair.to]))
  }

  /** A storage/ entry to its own file in the spool (named by number: a key may be no valid file name), hashed on the way. */
  private async spool(item: ArchiveItem): Promise<void> {
    const bucket = item.path.slice(STORAGE_FOLDER.length + 1).split('/')[0] ?? ''
    const { buckets } = this.target
    const wanted = buckets.all || buckets.pairs.some(pair => pair.from === bucket)
    if (item.type !== 'file') {
      if (item.type === 'directory') return
      throw new VerificationError(`${item.path} is a ${item.type}, but storage/ holds only objects; nothing was restored.`)
    }
    if (!wanted) {
      for await (const _ of item.data) void _
      return
    }
    this.spoolDirectory ??= await mkdtemp(path.join(this.spoolParent, STORAGE_SPOOL_PREFIX))
    const file = path.join(this.spoolDirectory, String(this.spooled.size))
    const hash = createHash('sha256')
    let size = 0
    // Each piece written before the next is asked for: the readers lend their buffers.
    const handle = await open(file, 'wx', 0o600)
    try {
      for await (const piece of item.data) {
        this.signal.throwIfAborted()
        hash.update(piece)
        size += piece.length
        for (let at = 0; at < piece.length;) at += (await handle.write(piece, at, piece.length - at)).bytesWritten
      }
    } finally {
      await handle.close()
    }
    this.spooled.set(item.path, { file, size, sha256: hash.digest('hex') })
  }

  private async checkBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: this.signal })
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new StorageError(
          `The Storage bucket '${bucket}' does not exist: create it first (Storage > New bucket, with the settings the original had: public or not, size limit, MIME types), then restore again; nothing was restored.`,
          { cause: error }
        )
      }
      throw storageError(error, `reach the Storage bucket '${bucket}'`)
    }
  }

  /** Lists each target bucket once (not a HEAD per object) and refuses if any key to restore is taken. */
  private async refuseTakenKeys(plan: readonly Planned[]): Promise<void> {
    const wanted = new Map<string, Set<string>>()
    for (const { bucket, record } of plan) {
      const keys = wanted.get(bucket) ?? new Set()
      keys.add(record.key)
      wanted.set(bucket, keys)
    }
    const taken: string[] = []
    let count = 0
    for (const [bucket, keys] of wanted) {
      let token: string | undefined
      do {
        let page
        try {
          page = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }), {
            abortSignal: this.signal
          })
        } catch (error) {
          throw storageError(error, `list the Storage bucket '${bucket}'`)
        }
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined || !keys.has(object.Key)) continue
          count += 1
          if (taken.length < CONFLICTS_SHOWN) taken.push(`${bucket}/${object.Key}`)
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
    }
    if (count > 0) {
      throw new StorageError(
        `${count} ${count === 1 ? 'key' : 'keys'} to restore already ${count === 1 ? 'exists' : 'exist'} in Storage (${taken.join(', ')}${count > taken.length ? ', …' : ''}); nothing was written. Restore into empty buckets, or set 'allow-overwrite-storage: true' to replace them.`
      )
    }
  }

  private async uploadOne({ record, bucket, file }: Planned): Promise<void> {
    const where = `${bucket}/${record.key}`
    const common = {
      Bucket: bucket,
      Key: record.key,
      ...(record.contentType ? { ContentType: record.contentType } : {}),
      Metadata: record.metadata
    }
    const handle = await open(file, 'r')
    try {
      if (record.size <= PART_SIZE) {
        const body = await handle.readFile()
        await this.request(where, options =>
          this.client.send(new PutObjectCommand({ ...common, Body: body, ContentLength: body.length, ContentMD5: md5(body) }), options)
        )
        return
      }
      const created = await this.request(where, options => this.client.send(new CreateMultipartUploadCommand(common), options))
      const uploadId = created.UploadId ?? ''
      try {
        const parts: { ETag: string; PartNumber: number }[] = []
        const buffer = Buffer.allocUnsafe(PART_SIZE)
        for (let offset = 0, partNumber = 1; offset < record.size; offset += PART_SIZE, partNumber++) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(PART_SIZE, record.size - offset), offset)
          const body = buffer.subarray(0, bytesRead)
          const part = await this.request(where, options =>
            this.client.send(
              new UploadPartCommand({
                Bucket: bucket,
                Key: record.key,
                UploadId: uploadId,
                PartNumber: partNumber,
                Body: body,
                ContentLength: bytesRead,
                ContentMD5: md5(body)
              }),
              options
            )
          )
          parts.push({ ETag: part.ETag ?? '', PartNumber: partNumber })
        }
        await this.request(where, options =>
          this.client.send(
            new CompleteMultipartUploadCommand({ Bucket: bucket, Key: record.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
            options
          )
        )
      } catch (error) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: record.key, UploadId: uploadId })).catch(() => {})
        throw error
      }
    } finally {
      await handle.close()
    }
  }

  /** One request of an upload, its failure said as what could not be uploaded. */
  private async request<Output>(where: string, run: (options: { abortSignal: AbortSignal }) => Promise<Output>): Promise<Output> {
    try {
      return await run({ abortSignal: this.signal })
    } catch (error) {
      if (this.signal.aborted) throw this.signal.reason
      throw storageError(error, `upload ${where} to Storage`)
    }
  }
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64')
}

async function text(data: AsyncIterable<Buffer>): Promise<string> {
  const pieces: Buffer[] = []
  for await (const piece of data) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces).toString('utf8')
}
