import { Gather, Scratch } from './buffers.js'
import type { ArchiveEntry, EntryChunk } from './entry.js'

/** POSIX ustar headers, with a pax extended header when a field does not fit ustar. */
const BLOCK = 512
const ZEROS = Buffer.alloc(BLOCK)
/** The zero bytes that end a member's data, one view per length: not a new view per file. */
const PADDINGS = Array.from({ length: BLOCK }, (_, length) => ZEROS.subarray(0, length))
const USTAR_MAX_SIZE = 0o77777777777 // 8 GiB - 1: larger files need a pax `size` record

/** The tar archive of the entries whose contents `chunks` brings, in order. */
export async function* tar(chunks: AsyncIterable<Omit<EntryChunk, 'index'>>): AsyncGenerator<Buffer> {
  const gather = new Gather()
  const header = new Scratch()
  let startsEntry = true
  for await (const { entry, data, last } of chunks) {
    if (entry.streamed) throw new Error(`tar needs the size of ${entry.relativePath} before its data: spool it first`)
    // The header, the data, the padding: each gathered, or handed on when large. Chosen by number,
    // not from an array of the three made for every file.
    for (let part = 0; part < 3; part++) {
      const piece =
        part === 0
          ? startsEntry
            ? tarHeader(entry, header)
            : undefined
          : part === 1
            ? data
            : last
              ? PADDINGS[paddingOf(entry.size)]
              : undefined
      if (!piece || piece.length === 0) continue
      const gathered = gather.before(piece)
      if (gathered) yield gathered
      if (!gather.keep(piece)) yield piece
    }
    startsEntry = last
  }
  const rest = gather.take()
  if (rest) yield rest
  yield Buffer.alloc(2 * BLOCK)
}

/** The entry's header (in `scratch`, lent like any piece), with a pax header before it when needed. */
function tarHeader(entry: ArchiveEntry, scratch: Scratch): Buffer {
  const name = entry.type === 'directory' ? `${entry.relativePath}/` : entry.relativePath
  const size = entry.type === 'file' ? entry.size : 0
  const linkTarget = entry.linkTarget ?? ''
  const typeflag = entry.type === 'file' ? '0' : entry.type === 'directory' ? '5' : '2'
  const cut = ustarCut(name)
  const linkFits = linkTarget.length <= 100 && isAscii(linkTarget)
  if (cut !== undefined && size <= USTAR_MAX_SIZE && linkFits) {
    // What nearly every entry is: one ustar block, and no pax records to build.
    return ustarBlock(
      { name, cut, mode: entry.mode, size, mtime: entry.mtimeSeconds, typeflag, linkname: linkTarget },
      scratch.zeroed(BLOCK)
    )
  }
  const pax: Record<string, string> = {}
  if (cut === undefined) pax.path = name
  if (size > USTAR_MAX_SIZE) pax.size = String(size)
  if (!linkFits) pax.linkpath = linkTarget
  const fields: UstarFields = {
    ...(cut === undefined ? { name: asciiFallback(name, 100), cut: -1 } : { name, cut }),
    mode: entry.mode,
    size: pax.size ? 0 : size,
    mtime: entry.mtimeSeconds,
    typeflag,
    linkname: pax.linkpath ? asciiFallback(linkTarget, 100) : linkTarget
  }
  const records = Object.entries(pax)
    .map(([key, value]) => paxRecord(key, value))
    .join('')
  const recordsLength = Buffer.byteLength(records)
  // The pax header, its records padded to a block, then the entry's own header.
  const headers = scratch.zeroed(BLOCK + recordsLength + paddingOf(recordsLength) + BLOCK)
  const paxFields = {
    name: asciiFallback(`PaxHeader/${name}`, 100),
    cut: -1,
    mode: 0o644,
    size: recordsLength,
    mtime: entry.mtimeSeconds,
    typeflag: 'x',
    linkname: ''
  }
  ustarBlock(paxFields, headers.subarray(0, BLOCK))
  headers.write(records, BLOCK)
  ustarBlock(fields, headers.subarray(-BLOCK))
  return headers
}

/** Zero bytes that round a member's data up to the block size. */
function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** A ustar header's fields, all ASCII. */
interface UstarFields {
  /** The path: what follows `cut` goes in the name field, what precedes it in the prefix field. */
  name: string
  /** Where ustarCut splits `name`; -1 when it fits the name field whole. */
  cut: number
  mode: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
}

const MAGIC_AND_VERSION = Buffer.from('ustar\u000000', 'latin1')

/**
 * Writes a ustar header into `block` (512 zero bytes) and returns it. Characters and digits go in
 * byte by byte, with no string made per field (padded octal numbers, cut names): those were ~15%
 * of what the main thread allocated for a tar of many small files.
 */
function ustarBlock(fields: UstarFields, block: Buffer): Buffer {
  writeAscii(block, 0, fields.name, fields.cut + 1, fields.name.length)
  writeOctal(block, fields.mode & 0o7777, 100, 8)
  writeOctal(block, 0, 108, 8) // uid
  writeOctal(block, 0, 116, 8) // gid
  writeOctal(block, fields.size, 124, 12)
  writeOctal(block, fields.mtime, 136, 12)
  block.fill(0x20, 148, 156) // checksum is computed with its own field as spaces
  block[156] = fields.typeflag.charCodeAt(0)
  writeAscii(block, 157, fields.linkname, 0, fields.linkname.length)
  MAGIC_AND_VERSION.copy(block, 257)
  writeAscii(block, 345, fields.name, 0, Math.max(fields.cut, 0))
  let checksum = 0
  for (let at = 0; at < BLOCK; at++) checksum += block[at] as number
  writeOctal(block, checksum, 148, 7)
  return block
}

/** `text`'s characters from `start` to `end` (ASCII) as bytes at `offset`. */
function writeAscii(block: Buffer, offset: number, text: string, start: number, end: number): void {
  for (let at = start; at < end; at++) block[offset + at - start] = text.charCodeAt(at)
}

/** `length - 1` octal digits, zero-padded, and a NUL; a negative value (an mtime before 1970) as 0. */
function writeOctal(block: Buffer, value: number, offset: number, length: number): void {
  let rest = Math.max(0, Math.floor(value))
  for (let at = offset + length - 2; at >= offset; at--) {
    block[at] = 0x30 + (rest % 8)
    rest = Math.floor(rest / 8)
  }
  block[offset + length - 1] = 0
}

/** Where ustar splits `name` into prefix (155) and name (100): -1 when it fits the name field; undefined when it cannot. */
function ustarCut(name: string): number | undefined {
  if (!isAscii(name)) return undefined
  if (name.length <= 100) return -1
  for (let cut = name.indexOf('/'); cut !== -1; cut = name.indexOf('/', cut + 1)) {
    if (cut <= 155 && name.length - cut - 1 <= 100 && name.length - cut - 1 > 0) return cut
  }
  return undefined
}

/** A pax record is `<length> <key>=<value>\n`, where length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  const bodyBytes = Buffer.byteLength(body)
  let length = bodyBytes + String(bodyBytes).length
  if (String(length).length !== String(bodyBytes).length) length = bodyBytes + String(length).length
  return `${length}${body}`
}

function isAscii(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value)
}

function asciiFallback(value: string, max: number): string {
  return value.replace(/[^\x20-\x7e]/g, '_').slice(0, max)
}
