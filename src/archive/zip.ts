import { ArchiveError } from '../errors.js'
import zlib from 'node:zlib'
import { BufferPool, Gather, Scratch, free, lengthOf } from './buffers.js'
import { deflateBlock, deflateEach, dictionaryOf, DEFLATE_END } from './compress.js'
import { READ_CHUNK, type ArchiveEntry, type EntryChunk, type EntryIndex } from './entry.js'
import { isUtf8Name, nameByteLength, writeName } from './names.js'
import { COMPRESSION_JOBS, inOrder } from '../threads/parallel.js'

/**
 * A zip (APPNOTE 6.3) written front to back, with entries deflated concurrently: every piece of
 * every file is one job, so many small files keep all cores busy, and a large file's pieces are
 * deflated in parallel into one stream (see compress.ts). Pieces are written in archive order.
 * An entry that fits in one piece gets its CRC and sizes in its local header; a larger one is
 * followed by a data descriptor. Zip64 records are added where sizes, offsets or the entry count
 * do not fit 32/16 bits. Unix modes, symlinks (stored as their target) and mtimes (the UT extra
 * field, in UTC) come back with Info-ZIP's unzip.
 *
 * Names are written as their bytes. Zip has one flag (bit 11) that says a name is UTF-8, and no
 * way to say what else it is; so the flag is set only where the name is UTF-8. A name that is not
 * is written as its raw bytes without the flag (what Info-ZIP's zip does on Linux, and what its
 * unzip gives back byte for byte there), and its central record says so in its file comment
 * (NOT_UTF8_NOTE, which `zipinfo -v` shows).
 */

const U32 = 0xffffffff
const U16 = 0xffff
const MADE_BY_UNIX = (3 << 8) | 45 // Unix attributes, spec 4.5 (Zip64)
const VERSION_DEFLATE = 20
const VERSION_ZIP64 = 45
const FLAG_DESCRIPTOR = 1 << 3
const FLAG_UTF8 = 1 << 11
const STORED = 0
const DEFLATED = 8
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
const DOS_DIRECTORY = 0x10
/** The file comment of an entry whose name is not UTF-8. */
const NOT_UTF8_NOTE = Buffer.from('name is not UTF-8: stored as its raw bytes, without the UTF-8 flag')

interface Written {
  entry: ArchiveEntry
  method: number
  flags: number
  crc: number
  size: number
  compressedSize: number
  offset: number
}

/** The zip of the entries whose contents `chunks` brings, in order; `level` 0 stores. */
export async function* zip(chunks: AsyncIterable<EntryChunk>, level: number, listing: EntryIndex): AsyncGenerator<Buffer> {
  const central = new ByteList()
  let entries = 0
  let offset = 0
  let current: Written | undefined
  const pool = new BufferPool(JOB_BUFFER)
  const gather = new Gather()
  // Each kind of record is built in a buffer of its own, reused once it was gathered or copied.
  const scratch = { local: new Scratch(), descriptor: new Scratch(), central: new Scratch() }
  for await (const job of inOrder(compressJobs(chunks, level, pool, listing), COMPRESSION_JOBS)) {
    for (const { chunk, output, stored } of job.results()) {
      const { entry } = chunk
      const pieces: Buffer[] = []
      if (!current) {
        const flags = isUtf8Name(entry.relativePath) ? FLAG_UTF8 : 0
        current = { entry, method: stored ? STORED : DEFLATED, flags, crc: 0, size: 0, compressedSize: 0, offset }
        if (chunk.last && !entry.streamed) {
          // The whole entry is here: its header can say what follows.
          Object.assign(current, { crc: zlib.crc32(chunk.data), size: chunk.data.length, compressedSize: lengthOf(output) })
          pieces.push(localHeader(current, scratch.local), ...output)
        } else {
          current.flags |= FLAG_DESCRIPTOR
          pieces.push(localHeader(current, scratch.local))
        }
      }
      if (current.flags & FLAG_DESCRIPTOR) {
        current.crc = zlib.crc32(chunk.data, current.crc)
        current.size += chunk.data.length
        const data = chunk.last && current.method === DEFLATED ? [...output, DEFLATE_END] : output
        current.compressedSize += lengthOf(data)
        pieces.push(...data)
        if (chunk.last) pieces.push(dataDescriptor(current, scratch.descriptor))
      }
      for (const piece of pieces) {
        offset += piece.length
        const gathered = gather.before(piece)
        if (gathered) yield gathered
        if (!gather.keep(piece)) yield piece
      }
      if (chunk.last) {
        central.push(centralHeader(current, scratch.central))
        entries += 1
        current = undefined
      }
    }
    // Written (gathered, or copied on by the consumer): the job's memory serves the next ones.
    free(job.owned)
    pool.giveBack(job.buffer)
  }
  const rest = gather.take()
  if (rest) yield rest
  const centralOffset = offset
  for (const piece of central.pieces()) {
    offset += piece.length
    yield piece
  }
  yield endOfCentralDirectory(entries, centralOffset, offset - centralOffset)
}

/** An entry's piece as it goes into the zip: deflated, or stored as it is. */
interface Compressed {
  /** The piece, its data a copy in the job's buffer. */
  chunk: EntryChunk
  output: Buffer[]
  stored: boolean
}

interface Job {
  /** The job's pieces, each made as the zip reaches it (see compressJobs). */
  results: () => Iterable<Compressed>
  /** From the pool: holds the job's input (the chunks' data). */
  buffer: Buffer
  /** Buffers the job alone made (its output, a dictionary), freed once written. */
  owned: Buffer[]
}

/** Whole small entries share a job up to this many bytes or entries. */
const JOB_BYTES = READ_CHUNK
const JOB_ENTRIES = 256
/** A job's input: a group reaches JOB_BYTES with its last entry, itself at most READ_CHUNK. */
const JOB_BUFFER = JOB_BYTES + READ_CHUNK

/**
 * Entries that come in one piece, grouped for one job: their indexes in the Listing, and where
 * each one's data lies in the group's buffer. Numbers, not an object per entry: a group lives
 * until its job is written, long enough for anything it holds to reach V8's old generation, so
 * the entries are made again from the Listing as they are written. With an object per entry (and
 * deflateEach's per-write objects), a zip of the bench's 1 GiB tree promoted 23 MiB to the old
 * generation after the listing; 8 MiB now, and the 4 GiB tree's peak went from 180-210 to ~175 MiB.
 */
class Group {
  readonly indexes: number[] = []
  /** Two numbers per entry: start and end of its data in `buffer`. */
  readonly ranges: number[] = []
  bytes = 0

  constructor(readonly buffer: Buffer) {}

  /** Copies the entry's data in (a symlink's is its target); true once the group should be compressed. */
  add(chunk: EntryChunk): boolean {
    const { entry } = chunk
    const length =
      entry.type === 'symlink' ? writeName(this.buffer, entry.linkTarget ?? '', this.bytes) : copyWhole(chunk, this.buffer, this.bytes)
    this.indexes.push(chunk.index)
    this.ranges.push(this.bytes, this.bytes + length)
    this.bytes += length
    return this.bytes >= JOB_BYTES || this.indexes.length >= JOB_ENTRIES
  }
}

/**
 * Copies a chunk's data into a job buffer, all of it: Buffer.copy stops silently where the target
 * ends, which would leave part of an entry out of the archive. Sources hand over pieces of at most
 * READ_CHUNK; a larger one is a bug in a source, and the backup fails saying so.
 */
function copyWhole(chunk: EntryChunk, target: Buffer, offset: number): number {
  if (chunk.data.length > target.length - offset) {
    throw new ArchiveError(
      `Internal error: a piece of ${chunk.data.length} bytes of ${chunk.entry.relativePath} does not fit the zip writer's ${target.length - offset}-byte buffer; nothing was left out, the backup stops here. Please report this.`
    )
  }
  return chunk.data.copy(target, offset)
}

/**
 * Jobs in archive order: entries that come in one piece are grouped, many to a job (deflated one
 * by one through one zlib stream); each piece of a larger file is a job of its own, primed with
 * the end of the piece before, and the file is DEFLATED whatever its pieces hold. The chunks are
 * lent, so each job copies its input into a buffer of the pool.
 */
async function* compressJobs(
  chunks: AsyncIterable<EntryChunk>,
  level: number,
  pool: BufferPool,
  listing: EntryIndex
): AsyncGenerator<() => Promise<Job>> {
  let group = new Group(pool.take())
  const takeGroup = (): (() => Promise<Job>) => {
    const whole = group
    group = new Group(pool.take())
    return () => compressGroup(whole, level, listing)
  }
  let inLargeFile = false
  let dictionary: Buffer | undefined
  for await (const chunk of chunks) {
    if (chunk.last && !inLargeFile && !chunk.entry.streamed) {
      if (group.add(chunk)) yield takeGroup()
    } else {
      if (group.indexes.length > 0) yield takeGroup()
      const buffer = pool.take()
      const piece = { ...chunk, data: buffer.subarray(0, copyWhole(chunk, buffer, 0)) }
      const before = dictionary
      yield level === 0
        ? () => Promise.resolve({ results: () => [{ chunk: piece, output: [piece.data], stored: true }], buffer, owned: [] })
        : () =>
            deflateBlock(piece.data, level, before).then(output => ({
              results: () => [{ chunk: piece, output, stored: false }],
              buffer,
              owned: before ? [...output, before] : output
            }))
      dictionary = !chunk.last && level > 0 ? dictionaryOf(piece.data) : undefined
    }
    inLargeFile = !chunk.last
  }
  if (group.indexes.length > 0) yield takeGroup()
  else pool.giveBack(group.buffer)
}

/** A group's job: its files deflated (or stored when that does not shrink them), the others stored. */
async function compressGroup(group: Group, level: number, listing: EntryIndex): Promise<Job> {
  const { indexes, ranges, buffer } = group
  const deflates = (entry: number): boolean => level > 0 && listing.type(indexes[entry] as number) === 'file'
  const deflatable = level > 0 ? ranges.filter((_, at) => deflates(at >> 1)) : []
  const deflated = level > 0 ? await deflateEach(buffer, deflatable, level) : undefined
  function* results(): Generator<Compressed> {
    // deflateEach answers in the order it was asked: the group's files, in order.
    for (let entry = 0, file = 0; entry < indexes.length; entry++) {
      const data = buffer.subarray(ranges[2 * entry], ranges[2 * entry + 1])
      const chunk = { index: indexes[entry] as number, entry: listing.entry(indexes[entry] as number), data, last: true }
      let output: Buffer | undefined
      if (deflated && deflates(entry)) {
        const start = deflated.bounds[2 * file] as number
        if (start !== -1) output = deflated.output.subarray(start, deflated.bounds[2 * file + 1])
        file += 1
      }
      yield output ? { chunk, output: [output], stored: false } : { chunk, output: [data], stored: true }
    }
  }
  return { results, buffer, owned: deflated ? [deflated.output] : [] }
}

/** A file that might not fit 32-bit sizes once compressed (deflate can grow incompressible data slightly), or of a size not known yet. */
function mayNeedZip64(entry: ArchiveEntry): boolean {
  return entry.streamed === true || entry.size + Math.ceil(entry.size / 1024) + 64 >= U32
}

function localHeader(file: Written, scratch: Scratch): Buffer {
  const zip64 = mayNeedZip64(file.entry)
  const descriptor = (file.flags & FLAG_DESCRIPTOR) !== 0
  // A Zip64 local header carries both sizes (unknown yet: zero) and says the descriptor has 8-byte sizes.
  const { header, nameLength, extraLength } = headerRecord(scratch, 30, file.entry, zip64 ? [0, 0] : [])
  header.writeUInt32LE(0x04034b50, 0)
  header.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFLATE, 4)
  header.writeUInt16LE(file.flags, 6)
  header.writeUInt16LE(file.method, 8)
  writeDosTime(header, 10, file.entry.mtimeSeconds)
  header.writeUInt32LE(descriptor ? 0 : file.crc >>> 0, 14)
  header.writeUInt32LE(zip64 ? U32 : descriptor ? 0 : file.compressedSize, 18)
  header.writeUInt32LE(zip64 ? U32 : descriptor ? 0 : file.size, 22)
  header.writeUInt16LE(nameLength, 26)
  header.writeUInt16LE(extraLength, 28)
  return header
}

function dataDescriptor(file: Written, scratch: Scratch): Buffer {
  const zip64 = mayNeedZip64(file.entry)
  const descriptor = scratch.zeroed(zip64 ? 24 : 16)
  descriptor.writeUInt32LE(0x08074b50, 0)
  descriptor.writeUInt32LE(file.crc >>> 0, 4)
  if (zip64) {
    descriptor.writeBigUInt64LE(BigInt(file.compressedSize), 8)
    descriptor.writeBigUInt64LE(BigInt(file.size), 16)
  } else {
    descriptor.writeUInt32LE(file.compressedSize, 8)
    descriptor.writeUInt32LE(file.size, 12)
  }
  return descriptor
}

function centralHeader(file: Written, scratch: Scratch): Buffer {
  // Zip64 extra: only the fields that overflow, in this order.
  const large = [file.size, file.compressedSize, file.offset].filter(value => value >= U32)
  const { type, mode } = file.entry
  const unixMode = (type === 'directory' ? S_IFDIR : type === 'symlink' ? S_IFLNK : S_IFREG) | (mode & 0o7777)
  const comment = file.flags & FLAG_UTF8 ? undefined : NOT_UTF8_NOTE
  const { header, nameLength, extraLength } = headerRecord(scratch, 46, file.entry, large, comment)
  header.writeUInt32LE(0x02014b50, 0)
  header.writeUInt16LE(MADE_BY_UNIX, 4)
  header.writeUInt16LE(large.length > 0 || mayNeedZip64(file.entry) ? VERSION_ZIP64 : VERSION_DEFLATE, 6)
  header.writeUInt16LE(file.flags, 8)
  header.writeUInt16LE(file.method, 10)
  writeDosTime(header, 12, file.entry.mtimeSeconds)
  header.writeUInt32LE(file.crc >>> 0, 16)
  header.writeUInt32LE(Math.min(file.compressedSize, U32), 20)
  header.writeUInt32LE(Math.min(file.size, U32), 24)
  header.writeUInt16LE(nameLength, 28)
  header.writeUInt16LE(extraLength, 30)
  header.writeUInt16LE(comment?.length ?? 0, 32)
  header.writeUInt32LE(((unixMode << 16) | (type === 'directory' ? DOS_DIRECTORY : 0)) >>> 0, 38)
  header.writeUInt32LE(Math.min(file.offset, U32), 42)
  return header
}

/** UT (the mtime) is in every header: 9 bytes. */
const MTIME_FIELD = 9

/**
 * A local or central header in one buffer of `scratch`: `fixed` zeroed bytes for the caller's
 * fields, then the name, then the extra fields: Info-ZIP's extended timestamp (UT: the mtime in
 * UTC seconds, which DOS time cannot hold) and, when given values, the Zip64 field.
 */
function headerRecord(
  scratch: Scratch,
  fixed: number,
  entry: ArchiveEntry,
  zip64Values: readonly number[],
  comment?: Buffer
): { header: Buffer; nameLength: number; extraLength: number } {
  const name = entryName(entry)
  const nameLength = nameByteLength(name)
  const extraLength = MTIME_FIELD + (zip64Values.length > 0 ? 4 + 8 * zip64Values.length : 0)
  const header = scratch.zeroed(fixed + nameLength + extraLength + (comment?.length ?? 0))
  writeName(header, name, fixed)
  comment?.copy(header, fixed + nameLength + extraLength)
  let at = fixed + nameLength
  header.writeUInt16LE(0x5455, at)
  header.writeUInt16LE(5, at + 2)
  header.writeUInt8(1, at + 4) // flags: mtime present
  header.writeUInt32LE(Math.min(Math.max(entry.mtimeSeconds, 0), U32), at + 5)
  at += MTIME_FIELD
  if (zip64Values.length > 0) {
    header.writeUInt16LE(0x0001, at)
    header.writeUInt16LE(8 * zip64Values.length, at + 2)
    zip64Values.forEach((value, index) => header.writeBigUInt64LE(BigInt(value), at + 4 + 8 * index))
  }
  return { header, nameLength, extraLength }
}

/** The end records; Zip64 ones first when the count, size or offset overflow the classic fields. */
function endOfCentralDirectory(entries: number, centralOffset: number, centralSize: number): Buffer {
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(Math.min(entries, U16), 8)
  end.writeUInt16LE(Math.min(entries, U16), 10)
  end.writeUInt32LE(Math.min(centralSize, U32), 12)
  end.writeUInt32LE(Math.min(centralOffset, U32), 16)
  if (entries < U16 && centralOffset < U32 && centralSize < U32) return end

  const record = Buffer.alloc(56)
  record.writeUInt32LE(0x06064b50, 0)
  record.writeBigUInt64LE(44n, 4) // size of the rest of this record
  record.writeUInt16LE(MADE_BY_UNIX, 12)
  record.writeUInt16LE(VERSION_ZIP64, 14)
  record.writeBigUInt64LE(BigInt(entries), 24)
  record.writeBigUInt64LE(BigInt(entries), 32)
  record.writeBigUInt64LE(BigInt(centralSize), 40)
  record.writeBigUInt64LE(BigInt(centralOffset), 48)
  const locator = Buffer.alloc(20)
  locator.writeUInt32LE(0x07064b50, 0)
  locator.writeBigUInt64LE(BigInt(centralOffset + centralSize), 8)
  locator.writeUInt32LE(1, 16) // total number of disks
  return Buffer.concat([record, locator, end])
}

function entryName(entry: ArchiveEntry): string {
  return entry.type === 'directory' ? `${entry.relativePath}/` : entry.relativePath
}

/** MS-DOS time and date (local time, 2-second resolution, 1980 to 2107) for tools that ignore UT. */
function writeDosTime(buffer: Buffer, offset: number, seconds: number): void {
  const date = new Date(seconds * 1000)
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107)
  buffer.writeUInt16LE((date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1), offset)
  buffer.writeUInt16LE(((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(), offset + 2)
}

const BYTE_LIST_CHUNK = 256 * 1024

/** The central directory, kept as a few large buffers rather than one small one per entry. */
class ByteList {
  private readonly full: Buffer[] = []
  private current = Buffer.allocUnsafe(BYTE_LIST_CHUNK)
  private filled = 0

  push(record: Buffer): void {
    if (this.filled + record.length > this.current.length) {
      this.full.push(this.current.subarray(0, this.filled))
      this.current = Buffer.allocUnsafe(Math.max(BYTE_LIST_CHUNK, record.length))
      this.filled = 0
    }
    this.filled += record.copy(this.current, this.filled)
  }

  pieces(): Buffer[] {
    return [...this.full, this.current.subarray(0, this.filled)]
  }
}
