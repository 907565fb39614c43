import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm, statfs } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import type { ArchiveEntry, EntryChunk } from '../../archive/entry.js'
import type { ArchiveFormat } from '../../archive/formats.js'
import { DatabaseError } from '../../errors.js'
import { dumpedBytes, serverVersion } from '../../postgres/catalog.js'
import { ensureClients } from '../../postgres/clients.js'
import { connect } from '../../postgres/connect.js'
import { MANIFEST_PATH, partPath, type DatabaseManifest, type PartName } from '../../postgres/manifest.js'
import type { DatabaseUrl } from '../../postgres/url.js'
import { pieces } from '../pieces.js'
import { DatabaseDump, dumpFailed, type DatabaseTarget, type DumpHooks, type PartRun } from './dump.js'

/** The spool's names start with this, so that post removes only what main made. */
export const SPOOL_PREFIX = 'supabase-s3-backup-spool-'
/** The spool is compressed: its size is taken to be at most this share of the tables' size on disk. */
const SPOOL_SHARE = 0.5
/** Free space kept beyond the spool's estimate. */
const SPOOL_MARGIN = 256 * 1024 * 1024
const SPOOL_LEVEL = 1

/** The database as preflight found it, and how much a spool of it would take. */
export interface PreparedDatabase extends DatabaseTarget {
  /** The dumped tables' size on disk, without indexes. */
  tableBytes: number
}

/**
 * Everything that can be known before the row is claimed: the connection works, the server's
 * version, client tools at least that version (installed if the runner can), and, for tar, room
 * on the runner's disk for the spool. Throws DatabaseError with what to do.
 */
export async function prepareDatabase(
  url: DatabaseUrl,
  format: ArchiveFormat,
  spoolParent: string,
  log: (line: string) => void
): Promise<PreparedDatabase> {
  const client = await connect(url, 'back it up')
  let server: { major: number; version: string }
  let tableBytes: number
  try {
    server = await serverVersion(client)
    tableBytes = await dumpedBytes(client)
  } finally {
    await client.end().catch(() => {})
  }
  const clients = await ensureClients(server.major, log)
  log(`The database runs PostgreSQL ${server.version}; dumping it with pg_dump ${clients.version} (${clients.directory}).`)
  if (format !== 'zip') await checkSpoolSpace(spoolParent, tableBytes, format)
  return { url, server, clients, tableBytes }
}

async function checkSpoolSpace(spoolParent: string, tableBytes: number, format: ArchiveFormat): Promise<void> {
  const { bavail, bsize } = await statfs(spoolParent)
  const free = bavail * bsize
  const needed = tableBytes * SPOOL_SHARE + SPOOL_MARGIN
  if (free < needed) throw noRoomForSpool(format, `the tables take ${gib(tableBytes)} on disk, and ${spoolParent} has ${gib(free)} free`)
}

function noRoomForSpool(format: ArchiveFormat, why: string): DatabaseError {
  return new DatabaseError(
    `The database is too large to spool on this runner for format '${format}' (${why}): tar needs each file's size before its content, so the dump is written to the runner's disk first. Use 'format: zip', which streams a database of any size without a spool.`
  )
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}

/** What the backup saves while the database is dumped, for post. */
export interface DatabaseHooks extends Pick<DumpHooks, 'onTools'> {
  /** The spool directory, saved before anything is written into it. */
  onSpool(directory: string): void
}

/**
 * The database part of an archive: database/roles.sql, schema.sql, data.sql and manifest.json.
 * zip takes them as they are dumped (streamed entries); tar needs each size first, so spool()
 * writes the dump, compressed, to the runner's disk, and the entries are read back from there.
 */
export class DatabaseSource {
  /** Bytes of SQL dumped so far, for progress lines. */
  dumpedBytes = 0
  private readonly dump: DatabaseDump
  private spoolDirectory: string | undefined
  private readonly spooled = new Map<PartName, { file: string; bytes: number }>()
  private manifestText: Buffer | undefined

  constructor(
    target: PreparedDatabase,
    private readonly signal: AbortSignal,
    private readonly hooks: DatabaseHooks
  ) {
    this.dump = new DatabaseDump(target, signal, {
      onTools: pids => hooks.onTools(pids),
      onProgress: bytes => {
        this.dumpedBytes = bytes
      }
    })
  }

  /** For tar: dumps every part into a compressed spool under `parent` before the archive starts. */
  async spool(parent: string): Promise<void> {
    this.spoolDirectory = await mkdtemp(path.join(parent, SPOOL_PREFIX))
    this.hooks.onSpool(this.spoolDirectory)
    await this.dump.begin()
    try {
      for (const part of this.dump.parts()) await this.spoolPart(part, this.spoolDirectory)
      this.manifestText = manifestBytes(await this.dump.manifest())
    } finally {
      await this.dump.end()
    }
  }

  /** The entries, in order; streamed as they are dumped unless spool() ran. */
  async *chunks(): AsyncGenerator<EntryChunk> {
    const mtimeSeconds = Math.floor(this.dump.startedAt.getTime() / 1000)
    if (this.spoolDirectory) {
      for (const [name, { file, bytes }] of this.spooled) {
        yield* pieces(readSpool(file), databaseEntry(partPath(name), bytes, mtimeSeconds, false))
      }
    } else {
      await this.dump.begin()
      try {
        for (const part of this.dump.parts()) yield* pieces(part.pieces, databaseEntry(partPath(part.name), 0, mtimeSeconds, true))
        this.manifestText = manifestBytes(await this.dump.manifest())
      } finally {
        await this.dump.end()
      }
    }
    const manifest = this.manifestText as Buffer
    yield {
      index: -1,
      entry: databaseEntry(MANIFEST_PATH, manifest.length, mtimeSeconds, !this.spoolDirectory),
      data: manifest,
      last: true
    }
  }

  /** The manifest, once the dump is done. */
  get manifest(): DatabaseManifest | undefined {
    return this.manifestText ? (JSON.parse(this.manifestText.toString('utf8')) as DatabaseManifest) : undefined
  }

  /** Ends the snapshot and removes the spool, whatever happened. */
  async close(): Promise<void> {
    await this.dump.end()
    if (this.spoolDirectory) await rm(this.spoolDirectory, { recursive: true, force: true })
  }

  private async spoolPart(part: PartRun, directory: string): Promise<void> {
    const file = path.join(directory, `${part.name}.zst`)
    try {
      await pipeline(
        Readable.from(part.pieces),
        zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: SPOOL_LEVEL } }),
        createWriteStream(file, { flags: 'wx', mode: 0o600 }),
        { signal: this.signal }
      )
    } catch (error) {
      if (this.signal.aborted) throw this.signal.reason
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') throw noRoomForSpool('tar', `${directory} filled up while spooling`)
      throw dumpFailed(error)
    }
    this.spooled.set(part.name, { file, bytes: part.result().bytes })
  }
}

function databaseEntry(relativePath: string, size: number, mtimeSeconds: number, streamed: boolean): ArchiveEntry {
  return { root: '', relativePath, type: 'file', size, mode: 0o644, mtimeSeconds, linkTarget: undefined, streamed }
}

function manifestBytes(manifest: DatabaseManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)
}

function readSpool(file: string): AsyncIterable<Buffer> {
  return createReadStream(file).pipe(zlib.createZstdDecompress())
}
