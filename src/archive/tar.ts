import { Gather, Scratch } from './buffers.js'
import type { ArchiveEntry, EntryChunk } from './entry.js'
import { isUtf8Name, nameBytes, shownName } from './names.js'

/**
 * POSIX ustar headers, with a pax extended header when a field does not fit ustar: a long name or
 * link, a UTF-8 one that is not printable ASCII, or a size over 8 GiB. A name that is not UTF-8
 * goes in as its raw bytes: in the ustar fields when it fits them (every tar reads those as bytes),
 * else in a pax `path` with `hdrcharset=BINARY`, the standard's way to say a pax name is not UTF-8
 * (bsdtar honours it; GNU tar 1.34 says it ignores the keyword, and keeps the bytes all the same).
 */
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
    if (entry.streamed) throw new Error(`tar needs the size of ${shownName(entry.relativePath)} before its data: spool it first`)
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
  const rawName = isUtf8Name(name) ? undefined : nameBytes(name)
  const cut = rawName ? ustarCutOfBytes(rawName) : ustarCut(name)
  const rawLink = isUtf8Name(linkTarget) ? undefined : nameBytes(linkTarget)
  const linkFits = rawLink ? rawLink.length <= 100 : linkTarget.length <= 100 && isAscii(linkTarget)
  if (cut !== undefined && size <= USTAR_MAX_SIZE && linkFits) {
    // What nearly every entry is: one ustar block, and no pax records to build.
    return ustarBlock(
      { name: rawName ?? name, cut, mode: entry.mode, size, mtime: entry.mtimeSeconds, typeflag, linkname: rawLink ?? linkTarget },
      scratch.zeroed(BLOCK)
    )
  }
  const records: Buffer[] = []
  // Before the records it applies to; only for bytes that are not UTF-8.
  if ((rawName && cut === undefined) || (rawLink && !linkFits)) records.push(paxRecord('hdrcharset', Buffer.from('BINARY')))
  if (cut === undefined) records.push(paxRecord('path', nameBytes(name)))
  if (size > USTAR_MAX_SIZE) records.push(paxRecord('size', Buffer.from(String(size))))
  if (!linkFits) records.push(paxRecord('linkpath', nameBytes(linkTarget)))
  const fields: UstarFields = {
    ...(cut === undefined ? { name: asciiFallback(name, 100), cut: -1 } : { name: rawName ?? name, cut }),
    mode: entry.mode,
    size: size > USTAR_MAX_SIZE ? 0 : size,
    mtime: entry.mtimeSeconds,
    typeflag,
    linkname: linkFits ? (rawLink ?? linkTarget) : asciiFallback(linkTarget, 100)
  }
  const recordsLength = records.reduce((total, record) => total + record.length, 0)
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
  Buffer.concat(records).copy(headers, BLOCK)
  ustarBlock(fields, headers.subarray(-BLOCK))
  return headers
}

/** Zero bytes that round a member's data up to the block size. */
function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** A ustar header's fields: ASCII strings, or the raw bytes of a name that is not UTF-8. */
interface UstarFields {
  /** The path: what follows `cut` goes in the name field, what precedes it in the prefix field. */
  name: string | Buffer
  /** Where ustarCut splits `name`; -1 when it fits the name field whole. */
  cut: number
  mode: number
  size: number
  mtime: number
  typeflag: string
  linkname: string | Buffer
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

/** `text`'s characters from `start` to `end` (ASCII, or bytes already) as bytes at `offset`. */
function writeAscii(block: Buffer, offset: number, text: string | Buffer, start: number, end: number): void {
  if (typeof text !== 'string') text.copy(block, offset, start, end)
  else for (let at = start; at < end; at++) block[offset + at - start] = text.charCodeAt(at)
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

/** ustarCut for the raw bytes of a name that is not UTF-8: any byte goes, the lengths are in bytes. */
function ustarCutOfBytes(name: Buffer): number | undefined {
  if (name.length <= 100) return -1
  for (let cut = name.indexOf(0x2f); cut !== -1; cut = name.indexOf(0x2f, cut + 1)) {
    if (cut <= 155 && name.length - cut - 1 <= 100 && name.length - cut - 1 > 0) return cut
  }
  return undefined
}

/** A pax record is `<length> <key>=<value>\n`, where length counts itself; the value is bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const bodyBytes = key.length + value.length + 3
  let length = bodyBytes + String(bodyBytes).length
  if (String(length).length !== String(bodyBytes).length) length = bodyBytes + String(length).length
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')])
}

function isAscii(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value)
}

/** For readers that ignore pax: printable ASCII, `_` for anything else (a byte that is not UTF-8 included). */
function asciiFallback(value: string, max: number): string {
  return value.replace(/[^\x20-\x7e]/g, '_').slice(0, max)
}
