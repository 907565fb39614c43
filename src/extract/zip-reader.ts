import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { nameFromBytes, quotedName } from '../archive/names.js'
import { ArchiveError } from '../errors.js'
import type { ByteReader } from './byte-reader.js'
import { refused, safeEntryPath, type ArchiveItem, type EntryType } from './entry.js'
import type { ArchiveSource } from './source.js'

/**
 * Reads a zip in one pass front to back, led by its central directory. The central directory is
 * at the end but it alone is authoritative: it says where each entry starts and how long it is,
 * which a stored entry followed by a data descriptor (what src/zip.ts writes at level 0 for files
 * over 1 MiB) cannot tell from its local header. So the end records are fetched first with a
 * ranged read, the central directory is paged in 1 MiB ranged reads as the entries are reached,
 * and the object itself is streamed once: every local header must be where the central directory
 * puts it and agree with it, so overlapping entries (the classic "better zip bomb") and data the
 * central directory does not describe are refused. Every entry is CRC-checked. Memory: one page
 * of the central directory and one entry's inflate state, whatever the number of entries.
 */

const LOCAL_HEADER = 0x04034b50
const CENTRAL_HEADER = 0x02014b50
const END_OF_CENTRAL = 0x06054b50
const ZIP64_END = 0x06064b50
const ZIP64_LOCATOR = 0x07064b50
const DESCRIPTOR = 0x08074b50
const U16 = 0xffff
const U32 = 0xffffffff
const STORED = 0
const DEFLATED = 8
const FLAG_ENCRYPTED = 1
const FLAG_DESCRIPTOR = 1 << 3
const HOST_UNIX = 3
const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
/** The end record, the largest comment, and the Zip64 locator before it. */
const TAIL_BYTES = 22 + U16 + 20
const PAGE_BYTES = 1024 * 1024
/** Entries up to this size are inflated in one call; larger ones are streamed. */
const WHOLE_ENTRY_BYTES = 1024 * 1024
const INFLATE_INLINE_BYTES = 16 * 1024
/** A symlink's target is its content; no file system takes longer ones. */
const MAX_LINK_TARGET = 4096

const inflateRaw = promisify(zlib.inflateRaw)

interface CentralRecord {
  rawName: Buffer
  name: string
  type: EntryType
  mode: number
  mtime: Date
  flags: number
  method: number
  crc: number
  compressedSize: number
  size: number
  offset: number
}

interface Directory {
  entries: number
  offset: number
  size: number
}

export async function* readZip(reader: ByteReader, source: ArchiveSource, signal?: AbortSignal): AsyncGenerator<ArchiveItem> {
  const directory = await findCentralDirectory(source, signal)
  const records = centralRecords(source, directory, signal)
  for (let index = 0; index < directory.entries; index += 1) {
    const next = await records.next()
    if (next.done) throw corrupt(`the central directory ends after ${index} of ${directory.entries} entries`)
    const record = next.value
    const where = `the zip entry ${quotedName(record.name)}`
    if (record.offset !== reader.position) {
      throw refused(
        `${where} starts at byte ${record.offset} but the entry before it ends at byte ${reader.position}: the zip has overlapping, out-of-order or hidden entries`
      )
    }
    const zip64 = await checkLocalHeader(reader, record, where)
    const path = safeEntryPath(record.name)

    if (record.type === 'symlink') {
      const target = await readWhole(reader, record, where)
      if (target.length > MAX_LINK_TARGET) throw refused(`symlink ${where} has a target of ${target.length} bytes`)
      yield { path, type: 'symlink', size: 0, mode: record.mode, mtime: record.mtime, linkTarget: nameFromBytes(target), data: none() }
    } else if (record.type === 'directory') {
      await reader.skip(record.compressedSize, where)
      yield { path, type: 'directory', size: 0, mode: record.mode, mtime: record.mtime, data: none() }
    } else {
      const content = checkedContent(reader, record, where)
      yield { path, type: 'file', size: record.size, mode: record.mode, mtime: record.mtime, data: resumable(content) }
      // The consumer may have stopped early: the rest is still read, inflated and checked.
      for await (const _ of content) {
        // checked inside
      }
    }
    if (record.flags & FLAG_DESCRIPTOR) await checkDescriptor(reader, record, zip64, where)
  }
  if (!(await records.next()).done)
    throw corrupt(`the central directory holds more than the ${directory.entries} entries its end record counts`)
  if (reader.position !== directory.offset) {
    throw refused(
      `the zip has ${directory.offset - reader.position} bytes between its last entry and its central directory that no entry accounts for`
    )
  }
  await reader.drain()
}

/** The end of central directory record (and the Zip64 one when fields overflow), from the object's tail. */
async function findCentralDirectory(source: ArchiveSource, signal?: AbortSignal): Promise<Directory> {
  const tailStart = Math.max(0, source.size - TAIL_BYTES)
  const tail = await source.readRange(tailStart, source.size, signal)
  let end = -1
  for (let at = tail.length - 22; at >= 0; at -= 1) {
    if (tail.readUInt32LE(at) === END_OF_CENTRAL && tail.readUInt16LE(at + 20) === tail.length - at - 22) {
      end = at
      break
    }
  }
  if (end === -1) throw corrupt('it has no end of central directory record (the object is truncated, or not a whole zip)')
  const disk = tail.readUInt16LE(end + 4)
  const directoryDisk = tail.readUInt16LE(end + 6)
  let directory: Directory = {
    entries: tail.readUInt16LE(end + 10),
    size: tail.readUInt32LE(end + 12),
    offset: tail.readUInt32LE(end + 16)
  }
  let directoryEnd = tailStart + end
  const locator = end - 20
  if (locator >= 0 && tail.readUInt32LE(locator) === ZIP64_LOCATOR) {
    const recordOffset = Number(tail.readBigUInt64LE(locator + 8))
    if (recordOffset + 56 > tailStart + locator) throw corrupt('its Zip64 end record lies past the end of the archive')
    const record = await source.readRange(recordOffset, recordOffset + 56, signal)
    if (record.length < 56 || record.readUInt32LE(0) !== ZIP64_END) throw corrupt('its Zip64 end record is missing')
    if (record.readUInt32LE(16) !== 0 || record.readUInt32LE(20) !== 0) throw refused('the zip spans several disks')
    directory = {
      entries: Number(record.readBigUInt64LE(32)),
      size: Number(record.readBigUInt64LE(40)),
      offset: Number(record.readBigUInt64LE(48))
    }
    directoryEnd = recordOffset
  } else if (disk !== 0 || directoryDisk !== 0) {
    throw refused('the zip spans several disks')
  }
  if (directory.offset + directory.size !== directoryEnd) {
    throw corrupt(
      `its central directory (bytes ${directory.offset} to ${directory.offset + directory.size}) does not end where its end record starts (byte ${directoryEnd})`
    )
  }
  return directory
}

/** The central directory's records in order, read a page at a time. */
async function* centralRecords(source: ArchiveSource, directory: Directory, signal?: AbortSignal): AsyncGenerator<CentralRecord> {
  let page = Buffer.alloc(0)
  let next = directory.offset
  const end = directory.offset + directory.size
  const need = async (length: number): Promise<boolean> => {
    while (page.length < length && next < end) {
      const upTo = Math.min(end, next + PAGE_BYTES)
      page = Buffer.concat([page, await source.readRange(next, upTo, signal)])
      next = upTo
    }
    return page.length >= length
  }
  while (await need(1)) {
    if (!(await need(46)) || page.readUInt32LE(0) !== CENTRAL_HEADER) throw corrupt('its central directory has a damaged record')
    const length = 46 + page.readUInt16LE(28) + page.readUInt16LE(30) + page.readUInt16LE(32)
    if (!(await need(length))) throw corrupt('its central directory ends in the middle of a record')
    yield parseCentralRecord(page.subarray(0, length))
    page = page.subarray(length)
  }
}

function parseCentralRecord(record: Buffer): CentralRecord {
  const madeBy = record.readUInt16LE(4) >> 8
  const flags = record.readUInt16LE(8)
  const method = record.readUInt16LE(10)
  const nameEnd = 46 + record.readUInt16LE(28)
  const rawName = record.subarray(46, nameEnd)
  const extra = extraFields(record.subarray(nameEnd, nameEnd + record.readUInt16LE(30)))
  // Zip64: the fields whose 32-bit value is all ones follow in this order.
  const wide = extra.get(0x0001)
  let wideAt = 0
  const widen = (value: number): number => {
    if (value !== U32) return value
    if (!wide || wideAt + 8 > wide.length) throw corrupt(`the entry ${quotedName(nameFromBytes(rawName))} lacks its Zip64 sizes`)
    const widened = Number(wide.readBigUInt64LE(wideAt))
    wideAt += 8
    return widened
  }
  const size = widen(record.readUInt32LE(24))
  const compressedSize = widen(record.readUInt32LE(20))
  const offset = widen(record.readUInt32LE(42))
  // Info-ZIP keeps the UTF-8 name in an extra field when the flag is not set; it counts only while
  // its CRC matches the name it stands for (a tool that renamed the entry left it stale).
  const unicode = extra.get(0x7075)
  const unicodeFits = unicode !== undefined && unicode.length > 5 && unicode.readUInt32LE(1) === zlib.crc32(rawName) >>> 0
  // The name's bytes whatever the UTF-8 flag says: UTF-8 where they are, each other byte kept as it
  // is (what the action writes for a name that is not UTF-8, and what unzip does on Linux).
  const name = unicodeFits ? nameFromBytes(unicode.subarray(5)) : nameFromBytes(rawName)
  const where = `the zip entry ${quotedName(name)}`
  if (flags & FLAG_ENCRYPTED) throw refused(`${where} is encrypted`)
  if (method !== STORED && method !== DEFLATED)
    throw refused(`${where} uses compression method ${method}; only stored and deflated entries are read`)

  const unixMode = madeBy === HOST_UNIX ? record.readUInt32LE(38) >>> 16 : 0
  const isDirectory = name.endsWith('/') || (unixMode & S_IFMT) === S_IFDIR || (record.readUInt32LE(38) & 0x10) !== 0
  const type: EntryType = isDirectory ? 'directory' : (unixMode & S_IFMT) === S_IFLNK ? 'symlink' : 'file'
  const mode = unixMode & 0o7777 || (isDirectory ? 0o755 : 0o644)
  const timestamp = extra.get(0x5455)
  const mtime =
    timestamp && timestamp.length >= 5 && (timestamp[0] ?? 0) & 1
      ? new Date(timestamp.readUInt32LE(1) * 1000)
      : dosTime(record.readUInt16LE(14), record.readUInt16LE(12))
  return { rawName, name, type, mode, mtime, flags, method, crc: record.readUInt32LE(16), compressedSize, size, offset }
}

function extraFields(extra: Buffer): Map<number, Buffer> {
  const fields = new Map<number, Buffer>()
  for (let at = 0; at + 4 <= extra.length;) {
    const length = extra.readUInt16LE(at + 2)
    fields.set(extra.readUInt16LE(at), extra.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return fields
}

/** Checks the local header against the central record; true when it carries Zip64 sizes (so does its descriptor). */
async function checkLocalHeader(reader: ByteReader, record: CentralRecord, where: string): Promise<boolean> {
  const header = await reader.read(30, `the local header of ${where}`)
  if (header.readUInt32LE(0) !== LOCAL_HEADER) throw corrupt(`${where} has no local header where the central directory puts it`)
  const name = await reader.read(header.readUInt16LE(26), `the local header of ${where}`)
  const extra = await reader.read(header.readUInt16LE(28), `the local header of ${where}`)
  if (!name.equals(record.rawName)) {
    throw refused(`${where} is named ${quotedName(nameFromBytes(name))} in its local header: the zip says two different things`)
  }
  if (header.readUInt16LE(8) !== record.method) throw refused(`${where} has a different compression method in its local header`)
  if (!(header.readUInt16LE(6) & FLAG_DESCRIPTOR) && header.readUInt32LE(14) !== record.crc) {
    throw refused(`${where} has a different CRC in its local header`)
  }
  return extraFields(extra).has(0x0001)
}

/** The data descriptor after an entry (signature optional, sizes 8 bytes with Zip64) must agree too. */
async function checkDescriptor(reader: ByteReader, record: CentralRecord, zip64: boolean, where: string): Promise<void> {
  const context = `the data descriptor of ${where}`
  const signed = (await reader.peek(4)).length === 4 && (await reader.peek(4)).readUInt32LE(0) === DESCRIPTOR
  const descriptor = await reader.read((signed ? 4 : 0) + (zip64 ? 20 : 12), context)
  const at = signed ? 4 : 0
  const crc = descriptor.readUInt32LE(at)
  const compressedSize = zip64 ? Number(descriptor.readBigUInt64LE(at + 4)) : descriptor.readUInt32LE(at + 4)
  const size = zip64 ? Number(descriptor.readBigUInt64LE(at + 12)) : descriptor.readUInt32LE(at + 8)
  if (crc !== record.crc || compressedSize !== record.compressedSize || size !== record.size) {
    throw refused(`${context} disagrees with the central directory`)
  }
}

/** A small entry in one piece (symlink targets): inflated and checked. */
async function readWhole(reader: ByteReader, record: CentralRecord, where: string): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of checkedContent(reader, record, where)) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces)
}

/** The consumer's view of an entry's content has no `return`: stopping early leaves it open for readZip to finish. */
function resumable(content: AsyncGenerator<Buffer>): AsyncIterable<Buffer> {
  return { [Symbol.asyncIterator]: () => ({ next: () => content.next() }) }
}

/** An entry's content, inflated, with its size and CRC checked against the central directory. */
async function* checkedContent(reader: ByteReader, record: CentralRecord, where: string): AsyncGenerator<Buffer> {
  const compressed = reader.take(record.compressedSize, `the data of ${where}`)
  let crc = 0
  let size = 0
  const pieces =
    record.method === STORED
      ? compressed
      : record.compressedSize <= WHOLE_ENTRY_BYTES
        ? inflateWhole(compressed, record, where)
        : inflateStream(compressed, record, where)
  for await (const piece of pieces) {
    size += piece.length
    if (size > record.size) throw refused(`${where} expands to more than the ${record.size} bytes the central directory declares`)
    crc = zlib.crc32(piece, crc)
    yield piece
  }
  if (size !== record.size) throw corrupt(`${where} holds ${size} bytes, not the ${record.size} its central directory declares`)
  if (crc >>> 0 !== record.crc) throw corrupt(`${where} fails its CRC check`)
}

async function* inflateWhole(compressed: AsyncIterable<Buffer>, record: CentralRecord, where: string): AsyncGenerator<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of compressed) pieces.push(piece)
  const options = { maxOutputLength: Math.max(1, record.size + 1) }
  try {
    // A small entry is inflated at once: a trip to the threadpool costs more than the work.
    const input = Buffer.concat(pieces)
    yield input.length <= INFLATE_INLINE_BYTES ? zlib.inflateRawSync(input, options) : await inflateRaw(input, options)
  } catch (error) {
    throw inflateError(error, record, where)
  }
}

async function* inflateStream(compressed: AsyncIterable<Buffer>, record: CentralRecord, where: string): AsyncGenerator<Buffer> {
  const inflater = zlib.createInflateRaw({ chunkSize: 256 * 1024 })
  const input = Readable.from(compressed)
  input.on('error', error => inflater.destroy(error))
  input.pipe(inflater)
  try {
    for await (const piece of inflater) yield piece as Buffer
  } catch (error) {
    throw inflateError(error, record, where)
  } finally {
    input.destroy()
    inflater.destroy()
  }
}

function inflateError(error: unknown, record: CentralRecord, where: string): ArchiveError {
  if (error instanceof ArchiveError) return error
  const code = (error as { code?: string }).code
  if (code === 'ERR_BUFFER_TOO_LARGE')
    return refused(`${where} expands to more than the ${record.size} bytes the central directory declares`)
  return corrupt(`${where} does not inflate (${error instanceof Error ? error.message : String(error)})`)
}

async function* none(): AsyncGenerator<Buffer> {
  // no content
}

function dosTime(date: number, time: number): Date {
  return new Date(1980 + (date >> 9), ((date >> 5) & 0xf) - 1, date & 0x1f, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2)
}

function corrupt(reason: string): ArchiveError {
  return new ArchiveError(`The zip is corrupt: ${reason}; refusing it.`)
}
