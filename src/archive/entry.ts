/**
 * What the archive formats take from a source: entries, and their contents as pieces in archive
 * order. A source (sources/files today) produces them; tar and zip write them.
 */

/**
 * One thing to put in the archive, with its path relative to the source's root (always `/`-separated).
 * A source may keep its entries flat and make this object only when the archive reaches the entry.
 */
export interface ArchiveEntry {
  /** The workspace, one string shared by every entry. */
  root: string
  relativePath: string
  type: 'file' | 'directory' | 'symlink'
  /** Bytes of a file when listed; the archive fails if the file then changes size. */
  size: number
  /** Permission bits (e.g. 0o755). */
  mode: number
  /** Last modification, in whole seconds since the epoch (what tar and zip keep). */
  mtimeSeconds: number
  /** Target of a symlink, stored as is: links are never followed. */
  linkTarget: string | undefined
  /**
   * Its content comes from a stream as it is produced (a database dump): zip writes it with its
   * sizes after the data, in Zip64 form, and `size` is not read. tar cannot take such an entry.
   */
  streamed?: boolean
}

/** A piece of an entry's content, in archive order. Directories and symlinks come as one empty piece. */
export interface EntryChunk {
  /** The entry's index in its EntryIndex, to make it again from there; -1 for a streamed entry, which is never looked up. */
  index: number
  entry: ArchiveEntry
  /** Lent (see buffers.ts): valid until the next chunk is asked for. */
  data: Buffer
  /** The entry's final piece (its only one when the file fits in READ_CHUNK). */
  last: boolean
}

/** Largest piece: a file is read in pieces of this size, each also one compression job. */
export const READ_CHUNK = 1024 * 1024

/** The entries by index, so that a format can hold numbers while it waits, and make the entry again when it writes. */
export interface EntryIndex {
  entry(index: number): ArchiveEntry
  type(index: number): ArchiveEntry['type']
}
