import { workerThread } from '../threads/thread.js'

/** Which digests an upload needs besides the archive's SHA-256 and the parts' CRC32s, which are always computed. */
export interface HashingPlan {
  /** MD5 of each part, for stores that keep no CRC32: sent as its Content-MD5, and the multipart ETag is built from them. */
  partMd5: boolean
  /** MD5 of the whole archive: the ETag some stores give a multipart object. */
  wholeMd5: boolean
  /** SHA-256 of each part, for a signed payload (plain http, a part with no checksum), so the SDK does not hash it on the main thread. */
  partSha256: boolean
}

/** What a part is sent with. */
export interface PartDigests {
  /** CRC32 of the part (S3's x-amz-checksum-crc32), as a number. */
  crc32: number
  md5: Buffer | undefined
  /** Hex, for x-amz-content-sha256. */
  sha256: string | undefined
}

/** What the upload needs to know about the archive's bytes, computed off the main thread. */
export interface ArchiveDigests {
  sha256: string
  md5: string | undefined
}

/** Tells apart the uploads hashed on the worker thread. */
let uploads = 0

/**
 * Hashes the parts of an upload on the worker thread (thread-jobs.ts), in the order they are
 * added: every digest of the archive costs about as much CPU as reading the files, and on the
 * main thread they slowed every upload by a third. Each part is hashed as soon as it is cut, and
 * is sent with its digests.
 */
export class PartHasher {
  private readonly upload = ++uploads
  private readonly started: Promise<void>

  constructor(plan: HashingPlan) {
    this.started = workerThread.run('hashStart', { upload: this.upload, plan })
    this.started.catch(() => {})
  }

  /**
   * The part's digests, once it is hashed; the caller must not change it before. A part on a
   * SharedArrayBuffer is read in place; any other is copied to the worker.
   */
  async add(part: Buffer): Promise<PartDigests> {
    // As a plain Uint8Array: a Buffer takes Node's slower path through postMessage (0.3 against 0.06 ms).
    const view = new Uint8Array(part.buffer, part.byteOffset, part.length)
    const hashed = workerThread.run<{ crc32: number; md5?: Uint8Array; sha256?: string }>('hashPart', { upload: this.upload, part: view })
    await this.started
    const { crc32, md5, sha256 } = await hashed
    return { crc32, md5: md5 ? Buffer.from(md5) : undefined, sha256 }
  }

  /** The whole archive's digests; call once every part was added. */
  async digests(): Promise<ArchiveDigests> {
    await this.started
    return workerThread.run<ArchiveDigests>('hashEnd', { upload: this.upload })
  }

  /** Drops what the worker keeps for this upload (an upload that failed never asks for its digests). */
  async close(): Promise<void> {
    await workerThread.run('hashEnd', { upload: this.upload })
  }
}
