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

/** The gathered bytes are handed on at this size; pieces this large or larger are handed on as they are. */
const GATHER_SIZE = 256 * 1024
const GATHER_FROM = 64 * 1024

/**
 * Gathers an archive's small pieces (headers, padding, small files) into one buffer: an archive of
 * small files otherwise went down the pipeline three pieces per file, and each piece through an
 * async generator costs a few promises, the main thread's largest garbage. What is gathered is
 * lent like any piece, and the buffer reused once the consumer asks for the next.
 */
export class Gather {
  private readonly buffer = Buffer.allocUnsafeSlow(GATHER_SIZE)
  private used = 0

  /** The gathered bytes, to hand on before `piece` when it does not fit with them or is not gathered. */
  before(piece: Buffer): Buffer | undefined {
    return piece.length < GATHER_FROM && this.used + piece.length <= GATHER_SIZE ? undefined : this.take()
  }

  /** Copies a small piece in (after `before`); false for a piece to hand on as it is. */
  keep(piece: Buffer): boolean {
    if (piece.length >= GATHER_FROM) return false
    this.used += piece.copy(this.buffer, this.used)
    return true
  }

  /** What is gathered, if anything; the gather starts empty again. */
  take(): Buffer | undefined {
    if (this.used === 0) return undefined
    const gathered = this.buffer.subarray(0, this.used)
    this.used = 0
    return gathered
  }
}
