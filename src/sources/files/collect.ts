import { Minimatch } from 'minimatch'
import { lstatSync, readdirSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { ArchiveError } from '../../errors.js'
import type { ArchiveEntry } from '../../archive/entry.js'
import { fsPath, nameFromBytes, patternFor, shownName } from '../../archive/names.js'
import { Listing } from './listing.js'

export function absolutePathOf(entry: Pick<ArchiveEntry, 'root' | 'relativePath'>): string {
  // The path is already normal: no path.join, which costs a few strings per file.
  return `${entry.root}/${entry.relativePath}`
}

export interface CollectOptions {
  workspace: string
  includeHiddenFiles: boolean
}

/** One line of `path`, as @actions/glob reads it (the semantics users know from upload-artifact and cache). */
interface PathPattern {
  exclude: boolean
  matcher: Minimatch
  /** A line ending in `/` matches directories only. */
  directoriesOnly: boolean
  /** `dir/**`: matches `dir` itself too. */
  endsWithGlobstar: boolean
}

const MATCH_OPTIONS = { dot: true, nobrace: true, nocomment: true, noext: true, nonegate: true } as const
/** The walk hands the event loop back this often, so a cancel is seen while listing a huge tree. */
const ENTRIES_PER_TURN = 2000

/**
 * Expands the `path` patterns inside the workspace: directories bring their descendants, `!`
 * lines exclude (a later line can include again), symlinks are listed as links, dot files only
 * when asked (the ones left out are counted in the Listing, for the log and the summary). Sorted
 * by path (see Listing) so the same tree always gives the same archive order.
 *
 * Names are read as bytes and carried in names.ts's lossless form, so a name that is not UTF-8 is
 * listed like any other. A pattern matches that form: the UTF-8 parts of a name as their
 * characters, and each byte that is not UTF-8 as one character that only a wildcard (`*`, `?`,
 * `**`) matches, since no pattern written in a workflow file can spell it. `data/**` matches
 * `data/<0xff>.txt`; `data/?.txt` does too.
 *
 * The walk is our own, with synchronous calls, over @actions/glob's semantics: @actions/glob
 * awaits one lstat per entry in turn, which took 1.5 to 3 s for 27 000 entries; this takes 0.3 s.
 */
export async function collectEntries(lines: readonly string[], options: CollectOptions): Promise<Listing> {
  const workspace = path.resolve(options.workspace)
  const patterns = lines.flatMap(parsePattern)
  const entries = new Listing(workspace)
  // Search roots never nest and links are not followed: every path is visited once. A loop over a
  // stack of paths, not an async recursion: that cost a promise per entry, and the whole list is
  // sorted at the end anyway.
  const roots = searchRoots(patterns)
  const toVisit = roots.flatMap(root => (root === '' ? readDirectory({ root: workspace, relativePath: '.' }) : [root]))
  // A root may name nothing (a pattern for a path that does not exist); anything else was seen by readdir.
  const namedByPattern = new Set(roots)
  for (let visited = 1; toVisit.length > 0; visited++) {
    const relativePath = toVisit.pop() as string
    if (visited % ENTRIES_PER_TURN === 0) await new Promise(resolve => setImmediate(resolve))
    const matched = matchKind(patterns, relativePath)
    if (matched === NO_MATCH && !patterns.some(pattern => !pattern.exclude && pattern.matcher.match(relativePath, true))) continue
    if (!options.includeHiddenFiles && path.posix.basename(relativePath).startsWith('.')) {
      // Left out by the contract, but never silently: the backup reports how many, and which.
      if (matched !== NO_MATCH) entries.skipHidden(relativePath)
      continue
    }
    const entry = describe(workspace, relativePath, namedByPattern.has(relativePath))
    if (!entry) continue
    if (entry.type === 'directory') {
      if (matched & MATCHES_DIRECTORY) entries.add(entry)
      for (const child of readDirectory(entry)) toVisit.push(`${relativePath}/${child}`)
    } else if (matched & MATCHES_FILE) {
      entries.add(entry)
    }
  }
  // Empty directories alone are not a backup: something the user meant to save is missing.
  if (entries.length === entries.directories) {
    throw new ArchiveError(
      `No files matched 'path' (${lines.join(', ')}) in the workspace ${workspace}. Check that the paths are relative to the workspace, that the checkout or build step that creates them ran first${options.includeHiddenFiles ? '' : ", and set 'include-hidden-files: true' if you meant dot files"}.`
    )
  }
  return entries
}

const REPLACEMENT_CHARACTER = '\ufffd'
const NO_MATCH = 0
const MATCHES_DIRECTORY = 1
const MATCHES_FILE = 2

/** A line and, unless it already ends in `**`, the implicit `line/**` that brings a directory's descendants. */
function parsePattern(line: string): PathPattern[] {
  let pattern = line.trim()
  let exclude = false
  while (pattern.startsWith('!')) {
    exclude = !exclude
    pattern = pattern.slice(1).trim()
  }
  pattern = pattern.replace(/^(\.\/)+/, '').replace(/\/+/g, '/')
  const directoriesOnly = pattern.endsWith('/')
  pattern = pattern.replace(/\/$/, '')
  // `.` is the workspace itself: everything in it.
  if (pattern === '.' || pattern === '') pattern = '**'
  const own = { exclude, directoriesOnly, matcher: new Minimatch(pattern, MATCH_OPTIONS), endsWithGlobstar: pattern.endsWith('**') }
  if (own.endsWithGlobstar && !directoriesOnly) return [own]
  return [own, { exclude, directoriesOnly: false, matcher: new Minimatch(`${pattern}/**`, MATCH_OPTIONS), endsWithGlobstar: false }]
}

/** Later lines win: an exclude removes what earlier lines matched, an include adds. */
function matchKind(patterns: readonly PathPattern[], relativePath: string): number {
  let kind = NO_MATCH
  for (const pattern of patterns) {
    const matched = pattern.matcher.match(relativePath) || (pattern.endsWithGlobstar && pattern.matcher.match(`${relativePath}/`))
    if (!matched) continue
    const matchedKind = pattern.directoriesOnly ? MATCHES_DIRECTORY : MATCHES_DIRECTORY | MATCHES_FILE
    kind = pattern.exclude ? kind & ~matchedKind : kind | matchedKind
  }
  return kind
}

/** Where the walk starts: the literal directories before each include line's first glob, without nested ones. */
function searchRoots(patterns: readonly PathPattern[]): string[] {
  const roots = new Set<string>()
  for (const pattern of patterns) {
    if (pattern.exclude) continue
    const literal: string[] = []
    for (const segment of pattern.matcher.pattern.split('/')) {
      if (/[*?[\]\\]/.test(segment)) break
      literal.push(segment)
    }
    roots.add(literal.join('/'))
  }
  const isNested = (root: string): boolean => [...roots].some(other => other !== root && (other === '' || root.startsWith(`${other}/`)))
  return [...roots].filter(root => !isNested(root))
}

/**
 * The entry at `relativePath`, or undefined when a pattern names a path that does not exist. An
 * entry that readdir just listed and that is gone now was deleted during the listing: that fails,
 * as it does when it goes while being read, rather than leave the backup without it.
 */
function describe(root: string, relativePath: string, namedByPattern: boolean): ArchiveEntry | undefined {
  const absolutePath = fsPath(absolutePathOf({ root, relativePath }))
  let stats
  try {
    stats = lstatSync(absolutePath)
  } catch (error) {
    const code = errorCode(error)
    if (namedByPattern && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined
    if (code === 'ENOENT') throw disappeared(relativePath, 'listed')
    throw unreadable(relativePath, code, error)
  }
  const type = stats.isSymbolicLink() ? 'symlink' : stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : undefined
  if (type) {
    return {
      root,
      relativePath,
      type,
      size: type === 'file' ? stats.size : 0,
      mode: stats.mode & 0o7777,
      mtimeSeconds: Math.floor(stats.mtimeMs / 1000),
      // The target's bytes too: a target that is not UTF-8 is kept like a name.
      linkTarget: type === 'symlink' ? nameFromBytes(readlinkSync(absolutePath, { encoding: 'buffer' })) : undefined
    }
  }
  throw new ArchiveError(
    `${shownName(relativePath)} is not a regular file, directory or symlink (a socket, FIFO or device); exclude it with '!${patternFor(relativePath)}'.`
  )
}

function readDirectory(directory: Pick<ArchiveEntry, 'root' | 'relativePath'>): string[] {
  const absolutePath = fsPath(absolutePathOf(directory))
  try {
    // Strings first: the quick way, and right for every name that is UTF-8. A name that is not comes
    // back with U+FFFD for its bytes, naming a file that does not exist: then the directory is read
    // again as bytes, and that listing is the one kept.
    const names = readdirSync(absolutePath)
    if (!names.some(name => name.includes(REPLACEMENT_CHARACTER))) return names
    return readdirSync(absolutePath, { encoding: 'buffer' }).map(nameFromBytes)
  } catch (error) {
    const code = errorCode(error)
    throw code === 'ENOENT' ? disappeared(directory.relativePath, 'listed') : unreadable(directory.relativePath, code, error)
  }
}

/** A path the listing or the reader could not read, with the errno code (e.g. EACCES) that says why. */
export function unreadable(relativePath: string, code: string, cause?: unknown): ArchiveError {
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? ` Give the runner's user read access to it, or exclude it with '!${patternFor(relativePath)}'.`
      : ''
  return new ArchiveError(`${shownName(relativePath)} could not be read (${code}).${hint}`, { cause })
}

/** A path that was there when `when` and is gone now. */
export function disappeared(relativePath: string, when: 'listed' | 'archived'): ArchiveError {
  return new ArchiveError(
    `${shownName(relativePath)} disappeared while the ${when === 'listed' ? 'files were being listed' : 'archive was being built'}. Make sure nothing deletes files under 'path' during the backup.`
  )
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error)
}
