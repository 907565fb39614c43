/**
 * The archive's bytes pass through a few large buffers per second. Left to the garbage collector,
 * a collection comes only after ~64 MiB of them are dead, and the allocator keeps their pages:
 * that garbage was a third of the action's memory. Buffers whose last use is known are freed then.
 *
 * Pieces handed down the archive pipeline are lent: a piece is valid until the next one is asked
 * for, so a consumer copies what it keeps (the upload copies each piece into a part).
 */

/**
 * Frees the memory of `buffers` now (detaches their ArrayBuffers), for buffers the caller alone
 * holds. Buffers on Node's shared pool of small allocations are left to the garbage collector.
 */
export function free(buffers: Iterable<Buffer>): void {
  for (const buffer of buffers) {
    const memory = buffer.buffer
    if (memory instanceof ArrayBuffer && !memory.detached && memory.byteLength > Buffer.poolSize) memory.transfer(0)
  }
}

/** Bytes in all of `pieces`. */
export function lengthOf(pieces: readonly Buffer[]): number {
  return pieces.reduce((sum, piece) => sum + piece.length, 0)
}

/** Buffers of one size, reused: taken for a job, given back once its output is written. */
export class BufferPool {
  private readonly spare: Buffer[] = []

  constructor(readonly size: number) {}

  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  /** `buffer` must be one this pool gave, or a view of one from its start (a last, shorter block). */
  giveBack(buffer: Buffer): void {
    this.spare.push(buffer.length === this.size ? buffer : Buffer.from(buffer.buffer, buffer.byteOffset, this.size))
  }
}

/**
 * A small zero-filled buffer (a header), cut from Node's shared pool: Buffer.alloc gives each one
 * its own ArrayBuffer, which for tens of thousands of entries costs the main thread more than the
 * headers' bytes.
 */
export function zeroed(size: number): Buffer {
  return Buffer.allocUnsafe(size).fill(0)
}
