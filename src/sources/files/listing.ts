import { resized } from '../../archive/buffers.js'
import type { ArchiveEntry, EntryIndex } from '../../archive/entry.js'
import { isUtf8Name, nameFromBytes, nameByteLength, writeName } from '../../archive/names.js'

/** Per entry: where its path ends in `paths`, its size, its mtime in seconds, and its mode and type. */
const FIELDS = 4
const TYPES: readonly ArchiveEntry['type'][] = ['file', 'directory', 'symlink']
/** Dot files left out (include-hidden-files is off): this many are named in the log. */
const HIDDEN_EXAMPLES = 5

/**
 * The entries to archive, in a few flat buffers rather than an object and a string each: a tree
 * of 100 000 entries held ~20 MiB of V8's heap that way, and made its young generation grow for
 * the rest of the run. Paths are kept as their bytes (UTF-8 or not: see names.ts), sorted by them
 * (a deterministic order), and an entry object is made only when the archive reaches it.
 */
export class Listing implements Iterable<ArchiveEntry>, EntryIndex {
  private paths: Buffer = Buffer.allocUnsafeSlow(64 * 1024)
  private pathsUsed = 0
  private fields = new Float64Array(1024 * FIELDS)
  private count = 0
  private readonly linkTargets = new Map<number, string>()
  /** Entries whose path is not UTF-8: rare, and decoded the slow way. */
  private readonly notUtf8 = new Set<number>()
  private order: Uint32Array | undefined
  /** Regular files, and their bytes when listed. */
  files = 0
  bytes = 0
  directories = 0
  /** Dot files and directories that matched but were left out, and the first few of them. */
  readonly hidden = { count: 0, examples: [] as string[] }

  constructor(readonly root: string) {}

  get length(): number {
    return this.count
  }

  add(entry: Omit<ArchiveEntry, 'root'>): void {
    const utf8 = isUtf8Name(entry.relativePath)
    const pathBytes = utf8 ? Buffer.byteLength(entry.relativePath) : nameByteLength(entry.relativePath)
    if (this.pathsUsed + pathBytes > this.paths.length)
      this.paths = resized(this.paths, Math.max(this.paths.length * 2, this.pathsUsed + pathBytes))
    this.pathsUsed += utf8
      ? this.paths.write(entry.relativePath, this.pathsUsed)
      : writeName(this.paths, entry.relativePath, this.pathsUsed)
    if (!utf8) this.notUtf8.add(this.count)
    if ((this.count + 1) * FIELDS > this.fields.length) this.fields = resized(this.fields, this.fields.length * 2)
    const at = this.count * FIELDS
    this.fields[at] = this.pathsUsed
    this.fields[at + 1] = entry.size
    this.fields[at + 2] = entry.mtimeSeconds
    this.fields[at + 3] = entry.mode * TYPES.length + TYPES.indexOf(entry.type)
    if (entry.linkTarget !== undefined) this.linkTargets.set(this.count, entry.linkTarget)
    if (entry.type === 'file') {
      this.files += 1
      this.bytes += entry.size
    }
    if (entry.type === 'directory') this.directories += 1
    this.count += 1
    this.order = undefined
  }

  /** A dot file or directory that matched and was left out because include-hidden-files is off. */
  skipHidden(relativePath: string): void {
    this.hidden.count += 1
    // The first few by path, whatever order the walk met them in: the same tree gives the same note.
    const { examples } = this.hidden
    if (examples.length === HIDDEN_EXAMPLES && relativePath > (examples.at(-1) as string)) return
    examples.push(relativePath)
    examples.sort()
    if (examples.length > HIDDEN_EXAMPLES) examples.pop()
  }

  *[Symbol.iterator](): Iterator<ArchiveEntry> {
    for (const index of this.sorted()) yield this.entry(index)
  }

  /** Entry indexes in archive order: by path, in byte order (for UTF-8, the order of code points). */
  sorted(): Uint32Array {
    if (!this.order) {
      // Listed: give back what doubling reserved (up to half of each buffer).
      this.paths = resized(this.paths, this.pathsUsed)
      this.fields = resized(this.fields, this.count * FIELDS)
      const order = new Uint32Array(this.count).map((_, index) => index)
      const paths = this.paths
      this.order = order.sort((a, b) => paths.compare(paths, this.pathStart(b), this.at(b, 0), this.pathStart(a), this.at(a, 0)))
    }
    return this.order
  }

  /** The entry at `index` as an object, made now: the archive asks for it only when it reaches it. */
  entry(index: number): ArchiveEntry {
    return {
      root: this.root,
      relativePath: this.notUtf8.has(index)
        ? nameFromBytes(this.paths.subarray(this.pathStart(index), this.at(index, 0)))
        : this.paths.toString('utf8', this.pathStart(index), this.at(index, 0)),
      type: this.type(index),
      size: this.at(index, 1),
      mode: Math.floor(this.at(index, 3) / TYPES.length),
      mtimeSeconds: this.at(index, 2),
      linkTarget: this.linkTargets.get(index)
    }
  }

  type(index: number): ArchiveEntry['type'] {
    return TYPES[this.at(index, 3) % TYPES.length] as ArchiveEntry['type']
  }

  size(index: number): number {
    return this.at(index, 1)
  }

  /** The first listed path that is `folder` or lies under it, or undefined: without a string per entry. */
  firstUnder(folder: string): string | undefined {
    const name = Buffer.from(folder)
    for (let index = 0; index < this.count; index++) {
      const start = this.pathStart(index)
      const length = this.at(index, 0) - start
      if (length < name.length || this.paths.compare(name, 0, name.length, start, start + name.length) !== 0) continue
      if (length === name.length || this.paths[start + name.length] === 0x2f) return this.entry(index).relativePath
    }
    return undefined
  }

  /** How many listed paths are not UTF-8 (zip stores those without its UTF-8 flag). */
  get pathsNotUtf8(): number {
    return this.notUtf8.size
  }

  /** True when the entry's path is not UTF-8: a file system call must take its bytes, not a string. */
  isNotUtf8(index: number): boolean {
    return this.notUtf8.has(index)
  }

  /** The entry's path, as its bytes copied into `target` at `offset`, without a string; returns the bytes copied. */
  copyPath(index: number, target: Buffer, offset: number): number {
    return this.paths.copy(target, offset, this.pathStart(index), this.at(index, 0))
  }

  pathLength(index: number): number {
    return this.at(index, 0) - this.pathStart(index)
  }

  private pathStart(index: number): number {
    return index === 0 ? 0 : this.at(index - 1, 0)
  }

  private at(index: number, field: number): number {
    return this.fields[index * FIELDS + field] as number
  }
}
