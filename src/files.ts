import * as glob from '@actions/glob'
import fs from 'node:fs'
import { lstat, readlink } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { ArchiveError } from './errors.js'
import { inOrder, READ_AHEAD } from './parallel.js'

/** One thing to put in the archive, with its path relative to the workspace (always `/`-separated). */
export interface ArchiveEntry {
  relativePath: string
  absolutePath: string
  type: 'file' | 'directory' | 'symlink'
  /** Bytes of a file when listed; the archive fails if the file then changes size. */
  size: number
  /** Permission bits (e.g. 0o755). */
  mode: number
  mtime: Date
  /** Target of a symlink, stored as is: links are never followed. */
  linkTarget?: string
}

export interface CollectOptions {
  workspace: string
  includeHiddenFiles: boolean
}

/**
 * Expands the `path` patterns inside the workspace: directories bring their descendants, `!`
 * lines exclude, symlinks are listed as links, dot files only when asked. Sorted by path so
 * the same tree always gives the same archive order.
 */
export async function collectEntries(patterns: readonly string[], options: CollectOptions): Promise<ArchiveEntry[]> {
  const workspace = path.resolve(options.workspace)
  const anchored = patterns.map(line => {
    const excluded = line.startsWith('!')
    const pattern = excluded ? line.slice(1).trim() : line
    return `${excluded ? '!' : ''}${path.join(workspace, pattern)}`
  })
  const globber = await glob.create(anchored.join('\n'), {
    followSymbolicLinks: false,
    implicitDescendants: true,
    matchDirectories: true,
    omitBrokenSymbolicLinks: false,
    excludeHiddenFiles: !options.includeHiddenFiles
  })

  const byPath = new Map<string, ArchiveEntry>()
  for await (const absolutePath of globber.globGenerator()) {
    const relative = path.relative(workspace, absolutePath)
    // The workspace itself is the archive root, and nothing outside it is ever archived.
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) continue
    const relativePath = relative.split(path.sep).join('/')
    if (byPath.has(relativePath)) continue
    byPath.set(relativePath, await describe(absolutePath, relativePath))
  }
  // Empty directories alone are not a backup: something the user meant to save is missing.
  if (![...byPath.values()].some(entry => entry.type !== 'directory')) {
    throw new ArchiveError(
      `No files matched 'path' (${patterns.join(', ')}) in the workspace ${workspace}. Check that the paths are relative to the workspace, that the checkout or build step that creates them ran first${options.includeHiddenFiles ? '' : ", and set 'include-hidden-files: true' if you meant dot files"}.`
    )
  }
  return [...byPath.values()].sort((a, b) => (a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0))
}

async function describe(absolutePath: string, relativePath: string): Promise<ArchiveEntry> {
  let stats
  try {
    stats = await lstat(absolutePath)
  } catch (error) {
    throw new ArchiveError(`${relativePath} could not be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, {
      cause: error
    })
  }
  const base = { relativePath, absolutePath, mode: stats.mode & 0o7777, mtime: stats.mtime }
  if (stats.isSymbolicLink()) return { ...base, type: 'symlink', size: 0, linkTarget: await readlink(absolutePath) }
  if (stats.isDirectory()) return { ...base, type: 'directory', size: 0 }
  if (stats.isFile()) return { ...base, type: 'file', size: stats.size }
  throw new ArchiveError(
    `${relativePath} is not a regular file, directory or symlink (a socket, FIFO or device); exclude it with '!${relativePath}'.`
  )
}

/** A piece of an entry's content, in archive order. Directories and symlinks come as one empty piece. */
export interface EntryChunk {
  entry: ArchiveEntry
  data: Buffer
  /** The entry's final piece (its only one when the file fits in READ_CHUNK). */
  last: boolean
}

/** Largest read: a file is read in pieces of this size, each also one compression job. */
export const READ_CHUNK = 1024 * 1024

const NO_DATA = Buffer.alloc(0)
// The callback API, promisified: FileHandle objects cost several times more per small file.
const openFile = promisify(fs.open)
const readFile = promisify(fs.read)
const closeFile = promisify(fs.close)

/**
 * Reads the entries' contents in order, READ_AHEAD pieces in flight: many small files are read
 * concurrently with one open, one read and one close each, and a large file in READ_CHUNK pieces.
 * A file that vanished or changed size since it was listed fails with an ArchiveError.
 */
export function readEntries(entries: readonly ArchiveEntry[]): AsyncGenerator<EntryChunk> {
  return inOrder(chunkReads(entries), READ_AHEAD)
}

function* chunkReads(entries: readonly ArchiveEntry[]): Generator<() => Promise<EntryChunk>> {
  for (const entry of entries) {
    if (entry.type !== 'file') {
      yield () => Promise.resolve({ entry, data: NO_DATA, last: true })
      continue
    }
    for (let offset = 0; ; offset += READ_CHUNK) {
      const length = Math.min(READ_CHUNK, entry.size - offset)
      const last = offset + length === entry.size
      yield () => readChunk(entry, offset, length, last)
      if (last) break
    }
  }
}

async function readChunk(entry: ArchiveEntry, offset: number, length: number, last: boolean): Promise<EntryChunk> {
  // The last piece asks for one byte more than listed: a file that grew shows up in the same read.
  const buffer = Buffer.allocUnsafe(length + (last ? 1 : 0))
  let filled = 0
  let fd: number | undefined
  try {
    fd = await openFile(entry.absolutePath, 'r')
    do {
      const { bytesRead } = await readFile(fd, buffer, filled, buffer.length - filled, offset + filled)
      if (bytesRead === 0) break
      filled += bytesRead
    } while (filled < length)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new ArchiveError(
        `${entry.relativePath} disappeared while the archive was being built. Make sure nothing deletes files under 'path' during the backup.`
      )
    }
    throw new ArchiveError(`${entry.relativePath} could not be read (${code ?? String(error)}).`, { cause: error })
  } finally {
    if (fd !== undefined) await closeFile(fd)
  }
  if (filled !== length) {
    const seen = offset + filled
    throw new ArchiveError(
      `${entry.relativePath} changed size while it was being archived (${entry.size} bytes when listed, ${seen}${seen > entry.size ? '+' : ''} read). Stop whatever writes to it before the backup, or exclude it with '!${entry.relativePath}'.`
    )
  }
  return { entry, data: buffer.subarray(0, length), last }
}
