import { nameFromBytes, quotedName } from '../archive/names.js'
import { ArchiveError } from '../errors.js'
import type { ByteReader } from './byte-reader.js'
import { refused, safeEntryPath, type ArchiveItem, type EntryType } from './entry.js'

/**
 * Reads a tar stream entry by entry: POSIX ustar, pax extended headers (path, linkpath, size,
 * mtime), GNU long names and links (`L`, `K`) and GNU base-256 numbers; what src/tar.ts writes
 * and what GNU tar and bsdtar write. Sparse files, multi-volume archives and device nodes are not
 * backup content: they are refused (devices and FIFOs are skipped with a warning). Names and link
 * targets are taken as bytes (names.ts), whether a pax header says `hdrcharset=BINARY` or not.
 */

const BLOCK = 512
/** Longest pax header or GNU long name accepted: names are at most a few KiB (PATH_MAX is 4096). */
const MAX_META_BYTES = 1024 * 1024

interface Pending {
  path?: string
  linkpath?: string
  size?: number
  mtime?: number
}

export async function* readTar(reader: ByteReader, warn: (message: string) => void): AsyncGenerator<ArchiveItem> {
  let pending: Pending = {}
  let globals: Pending = {}
  for (;;) {
    const header = await reader.read(BLOCK, 'a tar header')
    if (isZeros(header)) {
      // The end: a second zero block, then the writer's padding to its record size, all read for the hash.
      await reader.drain()
      return
    }
    const fields = parseHeader(header, reader.position - BLOCK)
    const size = pending.size ?? fields.size
    const where = `the tar entry ${quotedName(pending.path ?? fields.name)}`

    switch (fields.typeflag) {
      case 'x':
      case 'g': {
        const records = parsePax(await readMeta(reader, size, `the pax header of ${where}`), where)
        if (fields.typeflag === 'x') pending = { ...pending, ...records }
        else globals = { ...globals, ...records, path: undefined, linkpath: undefined }
        continue
      }
      case 'L':
        pending.path = cString(await readMeta(reader, size, `the GNU long name of ${where}`))
        continue
      case 'K':
        pending.linkpath = cString(await readMeta(reader, size, `the GNU long link of ${where}`))
        continue
      case 'V':
        await skipPadded(reader, size, where)
        continue
      case 'S':
        throw refused(`${where} is a GNU sparse file, which a backup never holds`)
      case 'M':
        throw refused(`${where} continues from another volume (multi-volume archive)`)
    }

    const type = entryType(fields.typeflag)
    const rawPath = pending.path ?? fields.name
    const rawLink = pending.linkpath ?? fields.linkname
    const mtime = pending.mtime ?? globals.mtime ?? fields.mtime
    pending = {}
    if (type === undefined) {
      if ('346'.includes(fields.typeflag)) {
        warn(`Skipped ${quotedName(rawPath)}: a device or FIFO, not restored.`)
        await skipPadded(reader, size, where)
        continue
      }
      throw refused(`${where} has the unknown type ${quotedName(fields.typeflag)}`)
    }
    const path = safeEntryPath(rawPath)
    const content = type === 'file' ? size : 0
    const start = reader.position
    yield {
      path,
      type,
      size: content,
      mode: fields.mode,
      mtime: new Date(mtime * 1000),
      ...(type === 'symlink' || type === 'hardlink' ? { linkTarget: rawLink } : {}),
      data: reader.take(content, `the content of ${where}`)
    }
    // Whatever the consumer left unread (and any data a link or directory carries) is skipped.
    await reader.skip(padded(size) - (reader.position - start), where)
  }
}

function entryType(typeflag: string): EntryType | undefined {
  switch (typeflag) {
    case '0':
    case '\u0000':
    case '7':
      return 'file'
    case '1':
      return 'hardlink'
    case '2':
      return 'symlink'
    case '5':
    case 'D':
      return 'directory'
  }
  return undefined
}

interface HeaderFields {
  name: string
  mode: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
}

function parseHeader(block: Buffer, offset: number): HeaderFields {
  const stored = parseNumber(block.subarray(148, 156))
  let unsigned = 0
  let signed = 0
  for (let index = 0; index < BLOCK; index += 1) {
    const byte = index >= 148 && index < 156 ? 0x20 : (block[index] ?? 0)
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  if (stored !== unsigned && stored !== signed) {
    throw new ArchiveError(
      `The tar header at byte ${offset} has a bad checksum: the archive is corrupt (or not a tar where a tar was expected); refusing it.`
    )
  }
  const magic = block.toString('latin1', 257, 263)
  const name = cBytes(block.subarray(0, 100))
  // POSIX ustar splits long names into prefix and name; the GNU format uses those bytes for other fields.
  const prefix = magic === 'ustar\u0000' ? cBytes(block.subarray(345, 500)) : Buffer.alloc(0)
  return {
    // Joined as bytes, then read: a writer may have split the name anywhere.
    name: nameFromBytes(prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), name]) : name),
    mode: parseNumber(block.subarray(100, 108)) & 0o7777,
    size: parseNumber(block.subarray(124, 136)),
    mtime: parseNumber(block.subarray(136, 148)),
    typeflag: String.fromCharCode(block[156] ?? 0),
    linkname: cString(block.subarray(157, 257))
  }
}

/** An octal field, or GNU's base-256 (first byte 0x80) for values that do not fit. */
function parseNumber(field: Buffer): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] ?? 0) & 0x7f
    for (let index = 1; index < field.length; index += 1) value = value * 256 + (field[index] ?? 0)
    return value
  }
  const text = field.toString('latin1').replace(/[\u0000 ].*$|^\s+/g, '')
  return text === '' ? 0 : parseInt(text.replace(/[^0-7]/g, '') || '0', 8)
}

/** A NUL-ended field's bytes. */
function cBytes(bytes: Buffer): Buffer {
  const end = bytes.indexOf(0)
  return end === -1 ? bytes : bytes.subarray(0, end)
}

/** A NUL-ended name, kept byte for byte. */
function cString(bytes: Buffer): string {
  return nameFromBytes(cBytes(bytes))
}

async function readMeta(reader: ByteReader, size: number, context: string): Promise<Buffer> {
  if (size > MAX_META_BYTES) throw refused(`${context} is ${size} bytes long, more than any name or header needs`)
  const bytes = await reader.read(size, context)
  await reader.skip(padded(size) - size, context)
  return bytes
}

/** `<length> <key>=<value>\n` records; the keys a restore needs, the rest ignored. */
function parsePax(records: Buffer, where: string): Pending {
  const found: Pending = {}
  let offset = 0
  while (offset < records.length) {
    const space = records.indexOf(0x20, offset)
    const length = space === -1 ? NaN : Number(records.toString('latin1', offset, space))
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > records.length) {
      throw new ArchiveError(`The pax header of ${where} is malformed: the archive is corrupt; refusing it.`)
    }
    // As bytes: a name may not be UTF-8 (with `hdrcharset=BINARY`, or without from a careless writer).
    const record = records.subarray(space + 1, offset + length - 1)
    offset += length
    const equals = record.indexOf(0x3d)
    const key = record.toString('latin1', 0, equals)
    const value = record.toString('utf8', equals + 1)
    if (key === 'path') found.path = nameFromBytes(record.subarray(equals + 1))
    else if (key === 'linkpath') found.linkpath = nameFromBytes(record.subarray(equals + 1))
    else if (key === 'size') found.size = paxNumber(value, where)
    else if (key === 'mtime') found.mtime = Math.floor(paxNumber(value, where))
    else if (key.startsWith('GNU.sparse.')) throw refused(`${where} is a sparse file, which a backup never holds`)
  }
  return found
}

function paxNumber(value: string, where: string): number {
  const number = Number(value)
  if (!/^-?\d+(\.\d+)?$/.test(value) || !Number.isFinite(number)) {
    throw new ArchiveError(`The pax header of ${where} has a bad number ${quotedName(value)}; refusing the archive.`)
  }
  return number
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK
}

async function skipPadded(reader: ByteReader, size: number, where: string): Promise<void> {
  await reader.skip(padded(size), where)
}

function isZeros(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false
  return true
}
