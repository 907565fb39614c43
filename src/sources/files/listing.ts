import { resized } from '../../archive/buffers.js'
import type { ArchiveEntry, EntryIndex } from '../../archive/entry.js'

/** Per entry: where its path ends in `paths`, its size, its mtime in seconds, and its mode and type. */
const FIELDS = 4
const TYPES: readonly ArchiveEntry['type'][] = ['file', 'directory', 'symlink']

/**
 * The entries to archive, in a few flat buffers rather than an object and a string each: a tree
 * of 100 000 entries held ~20 MiB of V8's heap that way, and made its young generation grow for
 * the rest of the run. Paths are kept as UTF-8 bytes, sorted by them (a deterministic order), and
 * an entry object is made only when the archive reaches it.
 */
export class Listing implements Iterable<ArchiveEntry>, EntryIndex {
  private paths: Buffer = Buffer.allocUnsafeSlow(64 * 1024)
  private pathsUsed = 0
  private fields = new Float64Array(1024 * FIELDS)
  private count = 0
  private readonly linkTargets = new Map<number, string>()
  private order: Uint32Array | undefined
  /** Regular files, and their bytes when listed. */
  files = 0
  bytes = 0
  directories = 0

  constructor(readonly root: string) {}

  get length(): number {
    return this.count
  }

  add(entry: Omit<ArchiveEntry, 'root'>): void {
    const pathBytes = Buffer.byteLength(entry.relativePath)
    if (this.pathsUsed + pathBytes > this.paths.length)
      this.paths = resized(this.paths, Math.max(this.paths.length * 2, this.pathsUsed + pathBytes))
    this.pathsUsed += this.paths.write(entry.relativePath, this.pathsUsed)
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

  *[Symbol.iterator](): Iterator<ArchiveEntry> {
    for (const index of this.sorted()) yield this.entry(index)
  }

  /** Entry indexes in archive order: by path, in byte order of UTF-8 (the order of code points). */
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
      relativePath: this.paths.toString('utf8', this.pathStart(index), this.at(index, 0)),
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

  /** The entry's path, as UTF-8 bytes copied into `target` at `offset`, without a string; returns the bytes copied. */
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
