import { quotedName } from '../archive/names.js'
import { ArchiveError } from '../errors.js'

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink'

/**
 * One entry as a reader hands it on. `data` brings a file's content and must be read before the
 * next entry is asked for (the readers stream: nothing is held back); what is left unread is
 * skipped, and still checked.
 */
export interface ArchiveItem {
  /** Relative, `/`-separated, no `.`, `..` or empty segments, no trailing `/`. */
  path: string
  type: EntryType
  /** Bytes of content (files); 0 for the other types. */
  size: number
  /** Permission bits (e.g. 0o755). */
  mode: number
  mtime: Date
  /** Symlinks: the target as stored. Hardlinks: the path of the earlier entry they share content with. */
  linkTarget?: string
  data: AsyncIterable<Buffer>
}

/** Limits that keep a hostile archive from filling the disk. */
export interface ExpansionLimits {
  /** Refuse the archive once its entries hold more than this many times its own size. */
  maxRatio: number
  /** Refuse the archive once its entries hold more than this many bytes (undefined: no such limit). */
  maxBytes: number | undefined
}

/**
 * The entry name as a safe relative path ('' for the root itself), or an ArchiveError that names it. The same rules for
 * every format: nothing absolute, no `..`, nothing a platform would read as a drive or a device. On Windows a
 * backslash separates too (and some zip writers use it), so `a\..\b` escapes there; on Linux and macOS a backslash
 * and a `C:` are ordinary characters of a name, as they were in the workspace backed up, and are kept.
 */
export function safeEntryPath(rawName: string, platform: NodeJS.Platform = process.platform): string {
  const shown = quotedName(rawName)
  if (rawName.includes('\u0000')) throw refused(`entry ${shown} has a NUL byte in its name`)
  const windows = platform === 'win32'
  if (windows ? WINDOWS_ABSOLUTE.test(rawName) : rawName.startsWith('/')) throw refused(`entry ${shown} is an absolute path`)
  const segments = rawName.split(windows ? /[\\/]+/ : /\/+/).filter(segment => segment !== '' && segment !== '.')
  if (segments.includes('..')) throw refused(`entry ${shown} escapes the destination`)
  return rawName
    .split('/')
    .filter(segment => segment !== '' && segment !== '.')
    .join('/')
}

/** What Windows reads as absolute or as a drive: a leading separator, or a drive letter. */
const WINDOWS_ABSOLUTE = /^([\\/]|[A-Za-z]:)/

/** The refusal every safety check throws: what was wrong, and that nothing was kept. */
export function refused(reason: string): ArchiveError {
  return new ArchiveError(`${reason}; refusing the archive.`)
}

/**
 * The checks that need the entries seen so far: a path may not sit below a symlink or a file
 * (writing there would go through the link), a symlink must point inside the tree, a hardlink
 * must name a file earlier in the archive, and a directory is never replaced by something else.
 * Keeps one map entry per path: memory grows with the number of entries, not their size.
 */
export class TreeCheck {
  private readonly seen = new Map<string, EntryType>()

  /** Throws an ArchiveError when `item` may not be written where it says. */
  admit(item: Pick<ArchiveItem, 'path' | 'type' | 'linkTarget'>): void {
    if (item.path === '') throw refused(`an entry of type ${item.type} has no name`)
    const segments = item.path.split('/')
    for (let depth = 1; depth < segments.length; depth += 1) {
      const parent = segments.slice(0, depth).join('/')
      const type = this.seen.get(parent)
      if (type === undefined) this.seen.set(parent, 'directory')
      else if (type !== 'directory') {
        throw refused(`entry ${quotedName(item.path)} lies below ${quotedName(parent)}, which is a ${type}, not a directory`)
      }
    }
    const earlier = this.seen.get(item.path)
    if (earlier !== undefined && (earlier === 'directory') !== (item.type === 'directory')) {
      throw refused(`entry ${quotedName(item.path)} would replace a ${earlier} with a ${item.type}`)
    }
    if (item.type === 'symlink') checkSymlinkTarget(item.path, item.linkTarget ?? '')
    if (item.type === 'hardlink') {
      const target = safeEntryPath(item.linkTarget ?? '')
      if (this.seen.get(target) !== 'file') {
        throw refused(
          `hardlink ${quotedName(item.path)} points to ${quotedName(item.linkTarget ?? '')}, which is not a file earlier in the archive`
        )
      }
    }
    this.seen.set(item.path, item.type === 'hardlink' ? 'file' : item.type)
  }
}

/**
 * A symlink may only point inside the tree. The target is resolved from the link's directory
 * with `..` allowed only as leading segments: after a named segment, which may itself be a link,
 * `..` would climb from wherever that link leads, which no check of the names can know.
 */
export function checkSymlinkTarget(linkPath: string, target: string, platform: NodeJS.Platform = process.platform): void {
  const link = quotedName(linkPath)
  if (target === '') throw refused(`symlink ${link} has an empty target`)
  if (target.includes('\u0000')) throw refused(`symlink ${link} has a NUL byte in its target`)
  if (platform === 'win32' ? WINDOWS_ABSOLUTE.test(target) : target.startsWith('/'))
    throw refused(`symlink ${link} points to the absolute path ${quotedName(target)}`)
  const segments = target.split(platform === 'win32' ? /[\\/]/ : '/').filter(segment => segment !== '' && segment !== '.')
  const ups = segments.findIndex(segment => segment !== '..')
  const leading = ups === -1 ? segments.length : ups
  if (segments.slice(leading).includes('..')) {
    throw refused(
      `symlink ${link} points to ${quotedName(target)}, with '..' after a directory name, which may lead outside the destination`
    )
  }
  const depth = linkPath.split('/').length - 1
  if (leading > depth) throw refused(`symlink ${link} points to ${quotedName(target)}, outside the destination`)
}
