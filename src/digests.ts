import { Worker } from 'node:worker_threads'

/** Which digests an upload needs besides the archive's SHA-256 and the CRC32s, which are always computed. */
export interface HashingPlan {
  /** MD5 of each part, for stores that keep no CRC32: sent as its Content-MD5, and the multipart ETag is built from them. */
  partMd5: boolean
  /** MD5 of the whole archive: the ETag some stores give a multipart object. */
  wholeMd5: boolean
  /** SHA-256 of each part, for a signed payload (plain http), so the SDK does not hash it on the main thread. */
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
  /** CRC32 of the whole archive: S3's FULL_OBJECT checksum. */
  crc32: number
  md5: string | undefined
}

type WorkerAnswer = { part: number; crc32: number; md5?: Uint8Array; sha256?: string } | ({ part: 'done' } & ArchiveDigests)

// Every digest of the archive costs about as much CPU as reading the files: done on the main thread
// they slowed every upload by a third. The worker hashes each part as soon as it is cut, and the
// part is sent with its digests. The whole-object CRC32 is a second pass over the part (zlib's crc32
// runs at several GB/s, far cheaper than combining per-part CRCs in JavaScript).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { crc32 } = require('node:zlib')
const plan = workerData
const sha256 = createHash('sha256')
const md5 = plan.wholeMd5 ? createHash('md5') : undefined
let wholeCrc32 = 0
let parts = 0
parentPort.on('message', part => {
  if (part === null) {
    parentPort.postMessage({ part: 'done', sha256: sha256.digest('hex'), crc32: wholeCrc32, md5: md5 ? md5.digest('hex') : undefined })
    return
  }
  parts += 1
  sha256.update(part)
  md5?.update(part)
  wholeCrc32 = crc32(part, wholeCrc32)
  parentPort.postMessage({
    part: parts,
    crc32: crc32(part),
    md5: plan.partMd5 ? createHash('md5').update(part).digest() : undefined,
    sha256: plan.partSha256 ? createHash('sha256').update(part).digest('hex') : undefined
  })
})
`

/** Hashes the parts of an upload, in the order they are added, on a worker thread. */
export class PartHasher {
  private readonly worker: Worker
  private readonly waiting = new Map<number, (digests: PartDigests) => void>()
  private added = 0
  private result: Promise<ArchiveDigests> | undefined
  private failure: Promise<never>

  constructor(plan: HashingPlan) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: plan })
    this.failure = new Promise((_, reject) => this.worker.once('error', reject))
    this.failure.catch(() => {})
    this.worker.on('message', (message: WorkerAnswer) => {
      if (message.part === 'done') return
      this.waiting.get(message.part)?.({
        crc32: message.crc32,
        md5: message.md5 ? Buffer.from(message.md5) : undefined,
        sha256: message.sha256
      })
      this.waiting.delete(message.part)
    })
  }

  /**
   * The part's digests, once it is hashed; the caller must not change it before. A part on a
   * SharedArrayBuffer is read in place; any other is copied to the worker.
   */
  add(part: Buffer): Promise<PartDigests> {
    this.added += 1
    const hashed = new Promise<PartDigests>(resolve => this.waiting.set(this.added, resolve))
    this.worker.postMessage(part)
    return Promise.race([hashed, this.failure])
  }

  /** The whole archive's digests; call once every part was added. */
  digests(): Promise<ArchiveDigests> {
    this.result ??= Promise.race([
      new Promise<ArchiveDigests>(resolve =>
        this.worker.on('message', (message: WorkerAnswer) => {
          if (message.part === 'done') resolve({ sha256: message.sha256, crc32: message.crc32, md5: message.md5 })
        })
      ),
      this.failure
    ])
    this.worker.postMessage(null)
    return this.result
  }

  close(): Promise<number> {
    return this.worker.terminate()
  }
}
