import { ArchiveError } from '../errors.js'

/**
 * Reads a stream of buffers as a sequence of fields: exact-length reads for headers, and
 * payloads handed on as views of the incoming buffers, never gathered, so memory stays at one
 * incoming buffer whatever the archive holds.
 */
export class ByteReader {
  private readonly source: AsyncIterator<Buffer>
  private current: Buffer = Buffer.alloc(0)
  private ended = false
  /** Bytes handed out (or skipped) so far. */
  position = 0

  constructor(
    source: AsyncIterable<Buffer>,
    /** Names what was being read when the stream ended early, for the truncation error. */
    private readonly what: string
  ) {
    this.source = source[Symbol.asyncIterator]()
  }

  /** Whether the stream has no byte left. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill())
  }

  /** The next `length` bytes (fewer only at the end of the stream), without consuming them. */
  async peek(length: number): Promise<Buffer> {
    while (this.current.length < length && (await this.more())) {
      // more() appended to current
    }
    return this.current.subarray(0, length)
  }

  /** Exactly `length` bytes; the end of the stream before that is a truncated archive. */
  async read(length: number, context: string): Promise<Buffer> {
    const bytes = await this.peek(length)
    if (bytes.length < length) throw this.truncated(context)
    this.consume(length)
    return Buffer.from(bytes)
  }

  /** The next `length` bytes as views of the incoming buffers. */
  async *take(length: number, context: string): AsyncGenerator<Buffer> {
    let left = length
    while (left > 0) {
      if (!(await this.fill())) throw this.truncated(context)
      const piece = this.current.subarray(0, Math.min(left, this.current.length))
      this.consume(piece.length)
      left -= piece.length
      yield piece
    }
  }

  async skip(length: number, context: string): Promise<void> {
    for await (const _ of this.take(length, context)) {
      // discarded
    }
  }

  /** Reads to the end of the stream, discarding: the bytes still count (and are hashed upstream). */
  async drain(): Promise<void> {
    for await (const _ of this.rest()) {
      // discarded
    }
  }

  /** Everything not read yet, as it comes: to hand the stream on (to a decompressor). */
  async *rest(): AsyncGenerator<Buffer> {
    while (await this.fill()) {
      const piece = this.current
      this.consume(piece.length)
      yield piece
    }
  }

  /** Stops the stream where it is (an abandoned download must not hold its connection open). */
  async close(): Promise<void> {
    this.ended = true
    await this.source.return?.()
  }

  private consume(length: number): void {
    this.current = this.current.subarray(length)
    this.position += length
  }

  /** Makes sure `current` has a byte, pulling from the stream; false at its end. */
  private async fill(): Promise<boolean> {
    while (this.current.length === 0) {
      if (!(await this.more())) return false
    }
    return true
  }

  /** Appends the next buffer of the stream to `current`; false at the end. */
  private async more(): Promise<boolean> {
    if (this.ended) return false
    const next = await this.source.next()
    if (next.done) {
      this.ended = true
      return false
    }
    this.current = this.current.length === 0 ? next.value : Buffer.concat([this.current, next.value])
    return true
  }

  private truncated(context: string): ArchiveError {
    return new ArchiveError(
      `The ${this.what} ends in the middle of ${context} (after ${this.position} bytes): the archive is truncated or corrupt; refusing it.`
    )
  }
}
