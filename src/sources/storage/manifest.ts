import { readManifestJson } from '../../archive/manifest.js'
/**
 * storage/manifest.json: every object the archive holds under storage/<bucket>/<key>, with what
 * S3 keeps beside the bytes (content type, user metadata), and the objects that were listed but
 * are not in the archive, each with why. The restore puts the objects back from it.
 */
export interface StorageManifest {
  /** This file's own format: a reader refuses a version it does not know. */
  manifestVersion: 1
  /** When the listing started (ISO 8601, UTC). */
  createdAt: string
  /** Every object archived, by bucket then key (the listing's order). Its content is at `storage/<bucket>/<key>`. */
  objects: StorageObjectRecord[]
  /** Objects listed but not archived, with the reason: never silently missing. */
  skipped: SkippedObject[]
  /** Per bucket: how many objects and bytes were archived. */
  buckets: { name: string; objects: number; bytes: number }[]
}

export interface StorageObjectRecord {
  bucket: string
  key: string
  size: number
  contentType: string | undefined
  /** User metadata (`x-amz-meta-*`), names lower-cased as S3 returns them. */
  metadata: Record<string, string>
  sha256: string
  etag: string
  lastModified: string | undefined
  /** The object was rewritten between the listing and the read: the archive has it as it was read. */
  changedAfterListing?: true
}

export interface SkippedObject {
  bucket: string
  key: string
  reason: string
}

export const STORAGE_FOLDER = 'storage'
export const STORAGE_MANIFEST_PATH = `${STORAGE_FOLDER}/manifest.json`

/** Where an object's bytes are in the archive. */
export function objectPath(bucket: string, key: string): string {
  return `${STORAGE_FOLDER}/${bucket}/${key}`
}

/**
 * Why a key cannot be an archive path that gives it back unchanged, or undefined. Archive readers
 * (ours, tar, unzip) drop empty and `.` segments and refuse `..`, so such a key would come back as
 * another key, or not at all. Supabase Storage refuses such names itself; S3 in general does not.
 */
export function keyProblem(key: string): string | undefined {
  if (key.includes('\u0000')) return 'its key has a NUL character, which no archive name can hold'
  const segments = key.split('/')
  if (segments.some(segment => segment === '' || segment === '.' || segment === '..')) {
    return "its key has an empty, '.' or '..' path segment (or starts or ends with '/'), which an archive cannot hold as a path unchanged"
  }
  return undefined
}

/** Pieces of the manifest's text are kept in buffers of this size: bytes, not an object per object. */
const TEXT_CHUNK = 256 * 1024

/**
 * Writes the manifest's text as objects are archived, into a few large buffers: 100 000 objects
 * hold ~25 MiB of text outside V8's heap instead of 100 000 records inside it. `objects` are
 * written one per line; the small parts (skipped, buckets) are added at the end.
 */
export class ManifestWriter {
  private readonly full: Buffer[] = []
  private current = Buffer.allocUnsafe(TEXT_CHUNK)
  private filled = 0
  private objectCount = 0
  private readonly skipped: SkippedObject[] = []
  private readonly buckets = new Map<string, { objects: number; bytes: number }>()

  constructor(createdAt: Date) {
    this.write(`{\n  "manifestVersion": 1,\n  "createdAt": ${JSON.stringify(createdAt.toISOString())},\n  "objects": [`)
  }

  get objects(): number {
    return this.objectCount
  }

  get skippedObjects(): readonly SkippedObject[] {
    return this.skipped
  }

  /** A bucket with no objects is still listed, so that the restore knows it was backed up. */
  addBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, { objects: 0, bytes: 0 })
  }

  add(record: StorageObjectRecord): void {
    this.write(`${this.objectCount === 0 ? '' : ','}\n    ${JSON.stringify(record)}`)
    this.objectCount += 1
    const bucket = this.buckets.get(record.bucket) ?? { objects: 0, bytes: 0 }
    bucket.objects += 1
    bucket.bytes += record.size
    this.buckets.set(record.bucket, bucket)
  }

  skip(object: SkippedObject): void {
    this.skipped.push(object)
  }

  /** The whole text, as the buffers it was written into (not copied into one); the writer is done. */
  finish(): Buffer[] {
    const buckets = [...this.buckets].map(([name, counts]) => ({ name, ...counts }))
    const list = <T>(items: readonly T[]): string =>
      items.length === 0 ? '[]' : `[\n    ${items.map(item => JSON.stringify(item)).join(',\n    ')}\n  ]`
    this.write(`${this.objectCount === 0 ? '' : '\n  '}],\n  "skipped": ${list(this.skipped)},\n  "buckets": ${list(buckets)}\n}\n`)
    return [...this.full, this.current.subarray(0, this.filled)]
  }

  /** Per bucket, what was archived. */
  bucketTotals(): { name: string; objects: number; bytes: number }[] {
    return [...this.buckets].map(([name, counts]) => ({ name, ...counts }))
  }

  private write(text: string): void {
    const bytes = Buffer.byteLength(text)
    if (this.filled + bytes > this.current.length) {
      this.full.push(this.current.subarray(0, this.filled))
      this.current = Buffer.allocUnsafe(Math.max(TEXT_CHUNK, bytes))
      this.filled = 0
    }
    this.filled += this.current.write(text, this.filled)
  }
}

/** The manifest read back (restore): the fields the restore relies on are checked. */
export function parseStorageManifest(text: string): StorageManifest {
  const manifest = readManifestJson<StorageManifest>(text, STORAGE_MANIFEST_PATH)
  if (!Array.isArray(manifest.objects) || !Array.isArray(manifest.buckets))
    throw new Error(`${STORAGE_MANIFEST_PATH} lists no objects or buckets.`)
  for (const object of manifest.objects) {
    const valid =
      typeof object?.bucket === 'string' &&
      typeof object.key === 'string' &&
      Number.isSafeInteger(object.size) &&
      typeof object.sha256 === 'string' &&
      (object.contentType === undefined || typeof object.contentType === 'string') &&
      typeof object.metadata === 'object' &&
      object.metadata !== null &&
      Object.values(object.metadata).every(value => typeof value === 'string')
    if (!valid) throw new Error(`${STORAGE_MANIFEST_PATH} has an object entry without bucket, key, size, sha256 and metadata.`)
  }
  return { skipped: [], ...manifest } as StorageManifest
}
