import { Worker } from 'node:worker_threads'

/** What the upload needs to know about the archive's bytes, computed off the main thread. */
export interface ArchiveDigests {
  sha256: string
  /** MD5 of the whole archive (the ETag some stores give a multipart object). */
  md5: string
  /** MD5 of each part, in order (S3's multipart ETag is built from them). */
  partMd5s: Buffer[]
}

// SHA-256 plus two MD5s cost about as much CPU as reading the files: done on the main thread they
// slowed every upload by a third. The worker hashes each part while it is being uploaded.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const sha256 = createHash('sha256')
const md5 = createHash('md5')
const partMd5s = []
parentPort.on('message', part => {
  if (part === null) {
    parentPort.postMessage({ sha256: sha256.digest('hex'), md5: md5.digest('hex'), partMd5s })
    return
  }
  sha256.update(part)
  md5.update(part)
  partMd5s.push(createHash('md5').update(part).digest())
  parentPort.postMessage(partMd5s.length)
})
`

/** Hashes the parts of an upload, in the order they are added, on a worker thread. */
export class PartHasher {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true })
  private readonly waiting = new Map<number, () => void>()
  private added = 0
  private result: Promise<ArchiveDigests> | undefined
  private failure: Promise<never>

  constructor() {
    this.failure = new Promise((_, reject) => this.worker.once('error', reject))
    this.failure.catch(() => {})
    this.worker.on('message', (message: number | ArchiveDigests) => {
      if (typeof message === 'number') {
        this.waiting.get(message)?.()
        this.waiting.delete(message)
      }
    })
  }

  /**
   * Resolves once `part` is hashed; the caller must not change it before. A part on a SharedArrayBuffer
   * is read in place; any other is copied to the worker (and that copy is garbage there until its GC).
   */
  add(part: Buffer): Promise<void> {
    this.added += 1
    const hashed = new Promise<void>(resolve => this.waiting.set(this.added, resolve))
    this.worker.postMessage(part)
    return Promise.race([hashed, this.failure])
  }

  digests(): Promise<ArchiveDigests> {
    this.result ??= Promise.race([
      new Promise<ArchiveDigests>(resolve =>
        this.worker.on('message', (message: number | ArchiveDigests) => {
          if (typeof message !== 'number') resolve({ ...message, partMd5s: message.partMd5s.map(md5 => Buffer.from(md5)) })
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
