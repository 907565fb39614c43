import { Gather, Scratch } from './buffers.js'
import type { ArchiveEntry } from './files.js'
import type { EntryChunk } from './reader.js'

/** POSIX ustar headers, with a pax extended header when a field does not fit ustar. */
const BLOCK = 512
const ZEROS = Buffer.alloc(BLOCK)
const NOTHING = Buffer.alloc(0)
const USTAR_MAX_SIZE = 0o77777777777 // 8 GiB - 1: larger files need a pax `size` record

/** The tar archive of the entries whose contents `chunks` brings, in order. */
export async function* tar(chunks: AsyncIterable<Omit<EntryChunk, 'index'>>): AsyncGenerator<Buffer> {
  const gather = new Gather()
  const header = new Scratch()
  let startsEntry = true
  for await (const { entry, data, last } of chunks) {
    for (const piece of [startsEntry ? tarHeader(entry, header) : NOTHING, data, ZEROS.subarray(0, last ? padding(entry.size) : 0)]) {
      if (piece.length === 0) continue
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
  const pax: Record<string, string> = {}
  const split = splitUstarName(name)
  if (!split) pax.path = name
  if (size > USTAR_MAX_SIZE) pax.size = String(size)
  if (Buffer.byteLength(linkTarget) > 100 || !isAscii(linkTarget)) pax.linkpath = linkTarget

  const fields: UstarFields = {
    name: split?.name ?? asciiFallback(name, 100),
    prefix: split?.prefix ?? '',
    mode: entry.mode,
    size: pax.size ? 0 : size,
    mtime: entry.mtimeSeconds,
    typeflag: entry.type === 'file' ? '0' : entry.type === 'directory' ? '5' : '2',
    linkname: pax.linkpath ? asciiFallback(linkTarget, 100) : linkTarget
  }
  if (Object.keys(pax).length === 0) return ustarBlock(fields, scratch.zeroed(BLOCK))
  const records = Object.entries(pax)
    .map(([key, value]) => paxRecord(key, value))
    .join('')
  const recordsLength = Buffer.byteLength(records)
  // The pax header, its records padded to a block, then the entry's own header.
  const headers = scratch.zeroed(BLOCK + recordsLength + padding(recordsLength) + BLOCK)
  const paxFields = {
    name: asciiFallback(`PaxHeader/${name}`, 100),
    prefix: '',
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
function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

interface UstarFields {
  name: string
  prefix: string
  mode: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
}

/** Writes a ustar header into `block` (512 zero bytes) and returns it. */
function ustarBlock(fields: UstarFields, block: Buffer): Buffer {
  block.write(fields.name, 0, 100, 'utf8')
  writeOctal(block, fields.mode & 0o7777, 100, 8)
  writeOctal(block, 0, 108, 8) // uid
  writeOctal(block, 0, 116, 8) // gid
  writeOctal(block, fields.size, 124, 12)
  writeOctal(block, fields.mtime, 136, 12)
  block.fill(' ', 148, 156) // checksum is computed with its own field as spaces
  block.write(fields.typeflag, 156, 1, 'ascii')
  block.write(fields.linkname, 157, 100, 'utf8')
  block.write('ustar\u0000', 257, 6, 'ascii')
  block.write('00', 263, 2, 'ascii')
  block.write(fields.prefix, 345, 155, 'utf8')
  let checksum = 0
  for (const byte of block) checksum += byte
  writeOctal(block, checksum, 148, 7)
  return block
}

function writeOctal(block: Buffer, value: number, offset: number, length: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'ascii')
}

/** ustar splits long names at a `/` into prefix (155) and name (100); undefined when that fails. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (!isAscii(name)) return undefined
  if (name.length <= 100) return { name, prefix: '' }
  for (let cut = name.indexOf('/'); cut !== -1; cut = name.indexOf('/', cut + 1)) {
    const prefix = name.slice(0, cut)
    const rest = name.slice(cut + 1)
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return { name: rest, prefix }
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
