import * as glob from '@actions/glob'
import { lstat, readlink } from 'node:fs/promises'
import path from 'node:path'
import { ArchiveError } from './errors.js'

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
