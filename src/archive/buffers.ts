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
 * holds. Buffers cut from Node's shared pool of small allocations are left to the garbage
 * collector: each pool is one ArrayBuffer of exactly Buffer.poolSize bytes (64 KiB on Node 24), so
 * a buffer of the caller's own of that size is left too.
 */
export function free(buffers: Iterable<Buffer>): void {
  for (const buffer of buffers) {
    const memory = buffer.buffer
    if (memory instanceof ArrayBuffer && !memory.detached && memory.byteLength !== Buffer.poolSize) memory.transfer(0)
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
 * One buffer reused for small records (headers) that are copied on, gathered, before the next one
 * is made. Cut from Node's pool instead, each pool of 64 KiB stayed garbage until a collection:
 * ~13 MiB held for a tar of 24 000 files.
 */
export class Scratch {
  private buffer = Buffer.allocUnsafeSlow(1024)

  /** `size` zeroed bytes, valid until the next call. */
  zeroed(size: number): Buffer {
    if (size > this.buffer.length) this.buffer = Buffer.allocUnsafeSlow(Math.max(size, 2 * this.buffer.length))
    return this.buffer.subarray(0, size).fill(0)
  }
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

/**
 * A copy of `array`'s start in a new one of `length` items, for an array the caller alone holds:
 * the old one's memory is freed at once. The copy never comes from Node's shared pool
 * (allocUnsafeSlow), so it is the caller's alone to free in turn.
 */
export function resized<T extends Buffer | Float64Array>(array: T, length: number): T {
  const copy = (array instanceof Buffer ? Buffer.allocUnsafeSlow(length) : new Float64Array(length)) as T
  copy.set(array.subarray(0, Math.min(length, array.length)))
  ;(array.buffer as ArrayBuffer).transfer(0)
  return copy
}
