/**
 * Archives made by code for the restore tests, hostile ones included: tars through the action's own
 * writer (src/tar.ts, which writes whatever names it is handed), and zips assembled field by field,
 * so a test can say exactly what each header claims.
 */
import zlib from 'node:zlib'
import type { ArchiveEntry, EntryChunk } from '../../src/archive/entry.js'
import { tar } from '../../src/archive/tar.js'

const MTIME = new Date('2022-02-02T02:02:02Z')

export type FakeEntry =
  { name: string; content: string | Buffer; mode?: number } | { name: string; dir: true } | { name: string; symlink: string }

/** A tar of the entries as given, `../` and `/` names and escaping links included. */
export async function tarOf(entries: readonly FakeEntry[]): Promise<Buffer> {
  async function* chunks(): AsyncGenerator<Omit<EntryChunk, 'index'>> {
    for (const fake of entries) {
      const base = { root: '', relativePath: fake.name, mtimeSeconds: MTIME.getTime() / 1000, linkTarget: undefined }
      let entry: ArchiveEntry
      let data = Buffer.alloc(0)
      if ('dir' in fake) entry = { ...base, type: 'directory', size: 0, mode: 0o755 }
      else if ('symlink' in fake) entry = { ...base, type: 'symlink', size: 0, mode: 0o777, linkTarget: fake.symlink }
      else {
        data = Buffer.from(fake.content)
        entry = { ...base, type: 'file', size: data.length, mode: fake.mode ?? 0o644 }
      }
      yield { entry, data, last: true }
    }
  }
  const pieces: Buffer[] = []
  for await (const piece of tar(chunks())) pieces.push(piece)
  return Buffer.concat(pieces)
}

export interface ZipFake {
  name: string
  content: Buffer
  /** Deflate (default) or store. */
  stored?: boolean
  /** What the central directory claims, when it should lie. */
  declaredSize?: number
}

/** A zip assembled field by field: local headers, data, central directory, end record. */
export function zipOf(entries: readonly ZipFake[]): Buffer {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const fake of entries) {
    const name = Buffer.from(fake.name)
    const data = fake.stored ? fake.content : zlib.deflateRawSync(fake.content, { level: 9 })
    const crc = zlib.crc32(fake.content)
    const size = fake.declaredSize ?? fake.content.length
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(fake.stored ? 0 : 8, 8)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(data.length, 18)
    local.writeUInt32LE(size, 22)
    local.writeUInt16LE(name.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE((3 << 8) | 20, 4)
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(fake.stored ? 0 : 8, 10)
    central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(data.length, 20)
    central.writeUInt32LE(size, 24)
    central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE(((0o100644 << 16) >>> 0) as number, 38)
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, data)
    centrals.push(central, name)
    offset += local.length + name.length + data.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}
