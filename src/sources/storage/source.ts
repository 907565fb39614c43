import {
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  type GetObjectCommandOutput,
  type S3Client
} from '@aws-sdk/client-s3'
import { createHash, type Hash } from 'node:crypto'
import { READ_CHUNK, type ArchiveEntry, type EntryChunk } from '../../archive/entry.js'
import { BackupError, StorageError } from '../../errors.js'
import { createS3Client, statusOf } from '../../store/s3.js'
import { inOrder } from '../../threads/parallel.js'
import { pieces } from '../pieces.js'
import type { BucketSelection, StorageTarget } from './inputs.js'
import { keyProblem, ManifestWriter, objectPath, STORAGE_MANIFEST_PATH, type SkippedObject } from './manifest.js'

/** ListObjectsV2's largest page: one page of keys is all the listing holds at a time. */
const PAGE_SIZE = 1000
/**
 * Objects up to this size are read ahead, whole, into memory, and handed on as one piece (a piece
 * is at most READ_CHUNK); larger ones are streamed when the archive reaches them.
 */
const READ_AHEAD_LIMIT = READ_CHUNK
/** Small objects read ahead at once: requests overlap, and memory stays under this many READ_AHEAD_LIMITs. */
const OBJECTS_AHEAD = 8

/** The Storage endpoint as preflight found it: a client, and the buckets that exist, in archive order. */
export interface PreparedStorage {
  client: S3Client
  buckets: string[]
  endpoint: string
}

/**
 * Everything that can be known before the row is claimed: the endpoint answers to the key pair,
 * and the buckets exist (`*`: the project's buckets, by name). Throws StorageError with what to do.
 */
export async function prepareStorage(target: StorageTarget, signal: AbortSignal): Promise<PreparedStorage> {
  const client = createS3Client(target.settings)
  const buckets = await resolveBuckets(client, target.buckets, signal)
  return { client, buckets, endpoint: target.settings.endpoint }
}

/** The bucket names a selection means: `*` lists them (ListBuckets), names are each checked (HeadBucket). */
export async function resolveBuckets(client: S3Client, selection: BucketSelection, signal: AbortSignal): Promise<string[]> {
  if (selection.all) {
    try {
      const listed = await client.send(new ListBucketsCommand({}), { abortSignal: signal })
      return (listed.Buckets ?? [])
        .map(bucket => bucket.Name ?? '')
        .filter(name => name !== '')
        .sort()
    } catch (error) {
      throw storageError(error, 'list the Storage buckets')
    }
  }
  for (const name of selection.names) {
    try {
      await client.send(new HeadBucketCommand({ Bucket: name }), { abortSignal: signal })
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new StorageError(
          `The Storage bucket '${name}' does not exist: check 'storage-buckets' against the buckets in the dashboard (Storage), or use '*' for every bucket.`,
          { cause: error }
        )
      }
      throw storageError(error, `reach the Storage bucket '${name}'`)
    }
  }
  return selection.names
}

/** What has been archived so far, for progress lines and the summary. */
export interface StorageProgress {
  objects: number
  bytes: number
  /** Objects rewritten between the listing and the read (archived as read). */
  changed: number
}

/** What became of the source's objects, once the archive is done. */
export interface StorageResult {
  buckets: { name: string; objects: number; bytes: number }[]
  objects: number
  bytes: number
  changed: number
  skipped: readonly SkippedObject[]
}

/** An object on its way into the archive: read ahead whole, to be read when reached, or not there. */
type Fetched =
  | { kind: 'read'; bucket: string; key: string; listedEtag: string | undefined; got: ObjectRead; data: Buffer }
  | { kind: 'deferred'; bucket: string; key: string; listedEtag: string | undefined }
  | { kind: 'skipped'; bucket: string; key: string; reason: string }

interface ObjectRead {
  size: number
  contentType: string | undefined
  metadata: Record<string, string>
  etag: string
  lastModified: Date | undefined
  body: AsyncIterable<Buffer> & { destroy?: () => void }
}

/**
 * The Storage part of an archive: storage/<bucket>/<key> for every object, then
 * storage/manifest.json. The listing is read a page at a time; small objects are fetched a few
 * ahead, whole; a large one is streamed when the archive reaches it. Each entry's size is the one
 * its GET answered with (tar writes it before the bytes), so an object rewritten after the listing
 * is archived as it was read, whole, never torn; one deleted after the listing is recorded in the
 * manifest's `skipped`, with why.
 */
export class StorageSource {
  readonly progress: StorageProgress = { objects: 0, bytes: 0, changed: 0 }
  private finished: StorageResult | undefined

  constructor(
    private readonly prepared: PreparedStorage,
    /** tar: entries carry their size before their bytes; zip takes them streamed. */
    private readonly sizesFirst: boolean,
    private readonly signal: AbortSignal,
    private readonly onSkipped: (object: SkippedObject) => void
  ) {}

  /** The entries, in order: every bucket's objects by key, then the manifest. */
  async *chunks(): AsyncGenerator<EntryChunk> {
    const startedAt = new Date()
    const writer = new ManifestWriter(startedAt)
    for await (const fetched of inOrder(this.fetchJobs(writer), OBJECTS_AHEAD)) {
      if (fetched.kind === 'skipped') {
        this.skip(writer, fetched)
        continue
      }
      const got = fetched.kind === 'read' ? fetched.got : await this.get(fetched.bucket, fetched.key)
      if (!got) {
        this.skip(writer, { bucket: fetched.bucket, key: fetched.key, reason: DELETED })
        continue
      }
      const entry = this.entry(fetched.bucket, fetched.key, got)
      const hash = createHash('sha256')
      if (fetched.kind === 'read') {
        hash.update(fetched.data)
        this.progress.bytes += fetched.data.length
        yield { index: -1, entry, data: fetched.data, last: true }
      } else {
        yield* pieces(this.counted(got, hash, entry.relativePath), entry)
      }
      const changed = fetched.listedEtag !== undefined && fetched.listedEtag !== got.etag
      if (changed) this.progress.changed += 1
      this.progress.objects += 1
      writer.add({
        bucket: fetched.bucket,
        key: fetched.key,
        size: got.size,
        contentType: got.contentType,
        metadata: got.metadata,
        sha256: hash.digest('hex'),
        etag: got.etag,
        lastModified: got.lastModified?.toISOString(),
        ...(changed ? { changedAfterListing: true as const } : {})
      })
    }
    const buckets = writer.bucketTotals()
    const manifest = writer.finish()
    const manifestBytes = manifest.reduce((total, piece) => total + piece.length, 0)
    this.finished = {
      buckets,
      objects: this.progress.objects,
      bytes: this.progress.bytes,
      changed: this.progress.changed,
      skipped: writer.skippedObjects
    }
    // In READ_CHUNK pieces, like any entry: 100 000 objects make a manifest of ~28 MiB.
    yield* pieces(fromArray(manifest), this.fileEntry(STORAGE_MANIFEST_PATH, manifestBytes, startedAt))
  }

  /** What was archived; undefined until the manifest is written. */
  get result(): StorageResult | undefined {
    return this.finished
  }

  get buckets(): readonly string[] {
    return this.prepared.buckets
  }

  /** One job per listed object, in listing order: a read ahead for small ones, a place in line for large ones. */
  private async *fetchJobs(writer: ManifestWriter): AsyncGenerator<() => Promise<Fetched>> {
    for (const bucket of this.prepared.buckets) {
      writer.addBucket(bucket)
      for await (const page of this.pages(bucket)) {
        for (const listed of page) {
          const key = listed.Key
          if (key === undefined) continue
          const problem = keyProblem(key)
          const listedEtag = listed.ETag
          if (problem) yield () => Promise.resolve({ kind: 'skipped', bucket, key, reason: problem })
          else if ((listed.Size ?? 0) > READ_AHEAD_LIMIT) yield () => Promise.resolve({ kind: 'deferred', bucket, key, listedEtag })
          else yield () => this.readAhead(bucket, key, listedEtag)
        }
      }
    }
  }

  /** The bucket's keys a page at a time (ListObjectsV2, in key order). */
  private async *pages(
    bucket: string
  ): AsyncGenerator<{ Key?: string | undefined; Size?: number | undefined; ETag?: string | undefined }[]> {
    let token: string | undefined
    do {
      let page
      try {
        page = await this.prepared.client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: PAGE_SIZE, ContinuationToken: token }), {
          abortSignal: this.signal
        })
      } catch (error) {
        if (this.signal.aborted) throw this.signal.reason
        throw storageError(error, `list the objects of the Storage bucket '${bucket}'`)
      }
      yield page.Contents ?? []
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }

  /** A small object, whole; one that grew past the limit since the listing waits for its turn instead. */
  private async readAhead(bucket: string, key: string, listedEtag: string | undefined): Promise<Fetched> {
    const got = await this.get(bucket, key)
    if (!got) return { kind: 'skipped', bucket, key, reason: DELETED }
    if (got.size > READ_AHEAD_LIMIT) {
      got.body.destroy?.()
      return { kind: 'deferred', bucket, key, listedEtag }
    }
    const parts: Buffer[] = []
    let length = 0
    try {
      for await (const part of got.body) {
        parts.push(part)
        length += part.length
      }
    } catch (error) {
      throw this.readFailed(objectPath(bucket, key), error)
    }
    if (length !== got.size) throw cutShort(objectPath(bucket, key), got.size, length)
    return { kind: 'read', bucket, key, listedEtag, got, data: parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length) }
  }

  /** GetObject; undefined when the key is gone (deleted since it was listed). */
  private async get(bucket: string, key: string): Promise<ObjectRead | undefined> {
    let answer: GetObjectCommandOutput
    try {
      answer = await this.prepared.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: this.signal })
    } catch (error) {
      if (this.signal.aborted) throw this.signal.reason
      if (statusOf(error) === 404 || (error as { name?: string }).name === 'NoSuchKey') return undefined
      throw storageError(error, `read ${objectPath(bucket, key)}`)
    }
    return {
      size: answer.ContentLength ?? 0,
      contentType: answer.ContentType,
      metadata: answer.Metadata ?? {},
      etag: answer.ETag ?? '',
      lastModified: answer.LastModified,
      body: answer.Body as unknown as ObjectRead['body']
    }
  }

  /** The body's bytes, hashed and counted as they pass; fails naming the object if they are not the size its GET announced. */
  private async *counted(got: ObjectRead, hash: Hash, name: string): AsyncGenerator<Buffer> {
    let length = 0
    try {
      for await (const part of got.body) {
        hash.update(part)
        length += part.length
        this.progress.bytes += part.length
        yield part
      }
    } catch (error) {
      throw this.readFailed(name, error)
    }
    if (length !== got.size) throw cutShort(name, got.size, length)
  }

  private readFailed(name: string, error: unknown): BackupError {
    if (this.signal.aborted) throw this.signal.reason
    if (error instanceof BackupError) return error
    return new StorageError(`Reading ${name} from Storage failed part-way (${String(error)}); re-run the backup.`, { cause: error })
  }

  private skip(writer: ManifestWriter, object: SkippedObject): void {
    writer.skip(object)
    this.onSkipped(object)
  }

  private entry(bucket: string, key: string, got: ObjectRead): ArchiveEntry {
    return this.fileEntry(objectPath(bucket, key), got.size, got.lastModified)
  }

  private fileEntry(relativePath: string, size: number, modified: Date | undefined): ArchiveEntry {
    return {
      root: '',
      relativePath,
      type: 'file',
      size,
      mode: 0o644,
      mtimeSeconds: Math.floor((modified ?? new Date()).getTime() / 1000),
      linkTarget: undefined,
      // zip takes each object as it comes (the same path for any size); tar writes the size first.
      streamed: !this.sizesFirst
    }
  }
}

const DELETED = 'deleted after it was listed, before it was read'

async function* fromArray(buffers: readonly Buffer[]): AsyncGenerator<Buffer> {
  yield* buffers
}

function cutShort(name: string, announced: number, read: number): StorageError {
  return new StorageError(
    `${name} changed while it was being read (${announced} bytes announced, ${read} read); Storage ended the transfer early. Re-run the backup, or stop whatever rewrites it.`
  )
}

/** An SDK error from the Storage endpoint as a StorageError naming the storage-* inputs to check. */
export function storageError(error: unknown, action: string): BackupError {
  if (error instanceof BackupError) return error
  const name = (error as { name?: string } | undefined)?.name ?? ''
  const code = (error as { code?: string } | undefined)?.code ?? ''
  const status = statusOf(error)
  const message = error instanceof Error ? error.message : String(error)
  const prefix = `Could not ${action}`
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || status === 401) {
    return new StorageError(
      `${prefix}: the Storage endpoint refused the key pair (${name || `HTTP ${status}`}). Check 'storage-access-key-id', 'storage-secret-access-key' and 'storage-region' against Storage > S3 Configuration in the dashboard.`,
      { cause: error }
    )
  }
  if (name === 'AccessDenied' || status === 403) {
    return new StorageError(
      `${prefix}: access denied (HTTP 403). Use an S3 access key of the project (Storage > S3 Configuration > Access keys), or a session token whose RLS policies on storage.objects allow it.`,
      { cause: error }
    )
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN'].includes(code) || name === 'TimeoutError') {
    return new StorageError(
      `${prefix}: the Storage endpoint is not reachable (${code || name}). Check 'storage-endpoint' (default <supabase-url>/storage/v1/s3) and that S3 connections are enabled under Storage > S3 Configuration.`,
      { cause: error }
    )
  }
  return new StorageError(
    `${prefix}: ${name && name !== 'Error' && name !== 'Unknown' ? `${name}: ` : ''}${message}${status ? ` (HTTP ${status})` : ''}`,
    {
      cause: error
    }
  )
}
