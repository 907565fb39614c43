import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import zlib from 'node:zlib'
import { quotedName } from '../archive/names.js'
import { AGE_MAGIC, isAgeEncrypted } from '../crypto/age.js'
import { ArchiveError, DecryptionError } from '../errors.js'
import type { ArchiveFormat } from '../archive/formats.js'
import { ByteReader } from './byte-reader.js'
import { refused, TreeCheck, type ArchiveItem, type EntryType, type ExpansionLimits } from './entry.js'
import type { ArchiveSource } from './source.js'
import { readTar } from './tar-reader.js'
import { readZip } from './zip-reader.js'
import { zstdFrames } from './zstd-frames.js'

export interface ReadOptions {
  limits: ExpansionLimits
  /** Things skipped rather than refused (a device node in a tar). */
  warn?: (message: string) => void
  signal?: AbortSignal
}

/** What was downloaded: known once every entry has been read. */
export interface DownloadSummary {
  format: ArchiveFormat
  /** Bytes of the object read (all of it). */
  bytes: number
  /** SHA-256 of those bytes, hex. */
  sha256: string
}

/** The format from the first bytes, never from the object's name; undefined when it is none of the four. */
export function detectFormat(head: Buffer): ArchiveFormat | undefined {
  const magic = head.length >= 4 ? head.readUInt32BE(0) : 0
  if (magic === 0x504b0304 || magic === 0x504b0506) return 'zip'
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz'
  if (magic === 0x28b52ffd) return 'tar.zst'
  if (isTarHeader(head)) return 'tar'
  return undefined
}

function isTarHeader(head: Buffer): boolean {
  return head.length >= 263 && head.toString('latin1', 257, 262) === 'ustar'
}

/**
 * An archive read entry by entry, any of the four formats, checked as it goes: names (nothing
 * absolute, no `..`), symlinks that stay inside the tree, nothing below a symlink, sizes within
 * the limits, CRCs (zip), and the whole object read to its end so its SHA-256 and size are
 * known. Each item's `data` must be read before asking for the next item. Nothing is written.
 */
export class ArchiveReader {
  private summary: DownloadSummary | undefined

  constructor(
    private readonly source: ArchiveSource,
    private readonly options: ReadOptions
  ) {}

  /** The object's format, size and SHA-256; only once items() has run to its end. */
  get download(): DownloadSummary {
    if (!this.summary) throw new Error('The archive has not been read to its end yet.')
    return this.summary
  }

  async *items(): AsyncGenerator<ArchiveItem> {
    const { source, options } = this
    const hash = createHash('sha256')
    let downloaded = 0
    const raw = new ByteReader(
      hashed(source.stream(options.signal), hash, count => (downloaded = count), source),
      source.name
    )
    try {
      const format = detectFormat(await raw.peek(512))
      if (!format && isAgeEncrypted(await raw.peek(AGE_MAGIC.length))) {
        throw new DecryptionError(
          `${source.name} is encrypted with age: set 'decrypt-identity' to the identity (AGE-SECRET-KEY-1…) of a recipient the backup was encrypted to, or 'decrypt-passphrase' to its passphrase.`
        )
      }
      if (!format) {
        throw new ArchiveError(
          `${source.name} is not a zip, gzip, zstd or tar archive (its first bytes are ${(await raw.peek(8)).toString('hex')}); refusing it.`
        )
      }
      yield* this.entries(raw, format)
      if (downloaded !== source.size) {
        throw new ArchiveError(
          `Read ${downloaded} bytes of ${source.name} but it has ${source.size}: the download was cut short; refusing it.`
        )
      }
      this.summary = { format, bytes: downloaded, sha256: hash.digest('hex') }
    } finally {
      await raw.close()
    }
  }

  private async *entries(raw: ByteReader, format: ArchiveFormat): AsyncGenerator<ArchiveItem> {
    const { source, options } = this
    const entries =
      format === 'zip'
        ? readZip(raw, source, options.signal)
        : readTar(await tarReader(raw, format, source, options), options.warn ?? (() => {}))
    const tree = new TreeCheck()
    const limit = expansionLimit(source.size, options.limits)
    let expanded = 0
    for await (const item of entries) {
      // A directory entry for the archive's own root (`./`, what `tar -C dir .` writes) is the destination itself.
      if (item.path === '' && item.type === 'directory') continue
      tree.admit(item)
      expanded += item.size
      // Checked before a byte is written: each reader guarantees an entry's content never exceeds its size.
      if (expanded > limit.bytes) throw limit.exceeded(item.path, item.size)
      yield item
    }
  }
}

/**
 * Reads every entry of an archive, contents included, checked as restore checks them (names,
 * links, limits, zip CRCs), and writes nothing: for `verify: download`, which streams the object
 * back to prove it restores. Yields one summary per entry; returns the object's size and SHA-256.
 */
export async function* readArchiveEntries(
  source: ArchiveSource,
  options: ReadOptions
): AsyncGenerator<{ path: string; type: EntryType; size: number }, DownloadSummary> {
  const reader = new ArchiveReader(source, options)
  for await (const item of reader.items()) {
    for await (const _ of item.data) {
      // read, and so checked
    }
    yield { path: item.path, type: item.type, size: item.size }
  }
  return reader.download
}

/** The decompressed tar stream of a tar, tar.gz or tar.zst, held to the expansion limits too. */
async function tarReader(raw: ByteReader, format: ArchiveFormat, source: ArchiveSource, options: ReadOptions): Promise<ByteReader> {
  if (format === 'tar') return raw
  const what = format === 'tar.gz' ? 'gzip' : 'zstd'
  const decompressor =
    format === 'tar.gz' ? zlib.createGunzip({ chunkSize: 256 * 1024 }) : zlib.createZstdDecompress({ chunkSize: 256 * 1024 })
  const input = Readable.from(format === 'tar.zst' ? zstdFrames(raw) : raw.rest())
  input.on('error', error => decompressor.destroy(error))
  input.pipe(decompressor)
  const limit = expansionLimit(source.size, options.limits)
  async function* decompressed(): AsyncGenerator<Buffer> {
    let total = 0
    try {
      for await (const piece of decompressor) {
        total += (piece as Buffer).length
        if (total > limit.bytes) throw limit.exceeded(undefined, total)
        yield piece as Buffer
      }
    } catch (error) {
      if (error instanceof ArchiveError) throw error
      throw new ArchiveError(
        `The ${what} stream of ${source.name} is truncated or corrupt (${error instanceof Error ? error.message : String(error)}); refusing it.`
      )
    } finally {
      input.destroy()
      decompressor.destroy()
    }
  }
  const tar = new ByteReader(decompressed(), `${what}-compressed tar`)
  const first = await tar.peek(512)
  if (!isTarHeader(first) && first.some(byte => byte !== 0)) {
    throw new ArchiveError(`${source.name} is ${what}-compressed but what it holds is not a tar archive; refusing it.`)
  }
  return tar
}

function expansionLimit(
  archiveBytes: number,
  limits: ExpansionLimits
): { bytes: number; exceeded: (path: string | undefined, size: number) => ArchiveError } {
  const byRatio = limits.maxRatio * Math.max(archiveBytes, 1)
  const bytes = Math.min(byRatio, limits.maxBytes ?? Infinity)
  return {
    bytes,
    exceeded: (path, size) => {
      const what =
        path === undefined
          ? `it expands to more than ${bytes} bytes`
          : `with entry ${quotedName(path)} (${size} bytes) it holds more than ${bytes} bytes`
      const why =
        bytes < byRatio
          ? `the 'max-size' limit`
          : `${limits.maxRatio} times its own ${archiveBytes} bytes ('max-ratio'), as a zip bomb does. If this backup really is that compressible, raise 'max-ratio'`
      return refused(`The archive is ${archiveBytes} bytes but ${what}: over ${why}`)
    }
  }
}

/** The object's bytes as they stream by: hashed, counted, and cut off if there are more than it should have. */
async function* hashed(
  stream: AsyncIterable<Buffer>,
  hash: ReturnType<typeof createHash>,
  onCount: (bytes: number) => void,
  source: ArchiveSource
): AsyncGenerator<Buffer> {
  let bytes = 0
  for await (const piece of stream) {
    bytes += piece.length
    if (bytes > source.size) throw new ArchiveError(`${source.name} has more than the ${source.size} bytes expected; refusing it.`)
    hash.update(piece)
    onCount(bytes)
    yield piece
  }
}
