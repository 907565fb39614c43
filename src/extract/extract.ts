import fs from 'node:fs'
import { chmod, link, lutimes, mkdir, mkdtemp, rename, rm, symlink, unlink, utimes } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { fsPath, quotedName } from '../archive/names.js'
import { ArchiveError } from '../errors.js'
import { safeEntryPath, type ArchiveItem } from './entry.js'

/** What a restore wrote. */
export interface ExtractResult {
  files: number
  directories: number
  symlinks: number
  /** Bytes of file content written. */
  bytes: number
}

// The callback API, promisified: FileHandle objects cost several times more per small file.
const openFile = promisify(fs.open)
const writeFile = promisify(fs.write)
const fchmod = promisify(fs.fchmod)
const futimes = promisify(fs.futimes)
const closeFile = promisify(fs.close)

/** Never follow a link at the last step either: parents are checked, and the file must be new. */
const CREATE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW
/** Permission bits kept: set-user-id and set-group-id are not restored. */
const KEPT_MODE_BITS = 0o1777
/** Directories stay writable while their content is written; their own mode is set at the end. */
const WORKING_DIR_MODE = 0o700
/** Files up to this size are written in the background, this many at once: a tree of small files is bound by syscalls, not bytes. */
const SMALL_FILE = 256 * 1024
const SMALL_FILES_IN_FLIGHT = 32

/**
 * Writes the items into a new temporary directory beside `destination`, and renames it into
 * place only once every item is written and `beforeCommit` (the digest check) has passed; on any
 * failure the temporary directory, and any parent this call created, is removed, so a failed
 * restore leaves nothing. `destination` must not exist, or be an empty directory.
 *
 * Writes never pass through a link: each parent directory is one this call made (mkdir of one
 * level at a time, so an existing name, e.g. on a case-insensitive disk, fails instead of being
 * followed), and files are created with O_EXCL | O_NOFOLLOW. The reader has already refused
 * names that escape and links that point outside. Names are written as their bytes (names.ts).
 */
export async function extractInto(
  destination: string,
  items: AsyncIterable<ArchiveItem>,
  beforeCommit: () => Promise<void> | void
): Promise<ExtractResult> {
  const parent = path.dirname(destination)
  const createdParent = await mkdir(parent, { recursive: true })
  const temp = await mkdtemp(path.join(parent, `.${path.basename(destination)}.restoring-`))
  const tree = new TreeWriter(temp)
  try {
    for await (const item of items) await tree.write(item)
    await tree.finishDirectories()
    await beforeCommit()
    await chmod(temp, await destinationMode(destination))
    await rename(temp, destination)
    return tree.result
  } catch (error) {
    await tree.settle()
    await rm(temp, { recursive: true, force: true })
    if (createdParent) await rm(createdParent, { recursive: true, force: true })
    throw error
  }
}

/** An empty directory being restored into keeps its mode; a new one gets the usual 0755. */
async function destinationMode(destination: string): Promise<number> {
  try {
    return (await fs.promises.stat(destination)).mode & 0o7777
  } catch {
    return 0o755
  }
}

class TreeWriter {
  readonly result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0 }
  /** Directories made so far, relative; a parent not in here is made before anything below it. */
  private readonly made = new Set<string>()
  /** Files and links written so far, relative: only these may be replaced by a later entry of the same name. */
  private readonly written = new Set<string>()
  /** Mode and mtime of each directory, applied last: writing into a directory changes its mtime. */
  private readonly directoryTimes = new Map<string, { mode: number; mtime: Date }>()

  constructor(private readonly root: string) {}

  /** Small files being written in the background, by path: a later entry of the same path waits for its write. */
  private readonly inFlight = new Map<string, Promise<void>>()
  private failure: { error: unknown } | undefined

  async write(item: ArchiveItem): Promise<void> {
    await this.makeParents(item.path)
    const target = this.absolute(item.path)
    await this.inFlight.get(item.path)
    if (item.type === 'hardlink') await this.settle()
    if (this.failure) throw this.failure.error
    switch (item.type) {
      case 'directory':
        if (!this.made.has(item.path)) await this.makeDirectory(item.path)
        this.directoryTimes.set(item.path, { mode: item.mode, mtime: item.mtime })
        return
      case 'file':
        if (item.size <= SMALL_FILE) await this.writeInBackground(item.path, target, item)
        else await this.writeFile(item.path, target, item, item.data)
        this.result.files += 1
        return
      case 'symlink':
        await this.replacing(item.path, target, () => symlink(fsPath(item.linkTarget ?? ''), target))
        await lutimes(target, item.mtime, item.mtime)
        this.result.symlinks += 1
        return
      case 'hardlink':
        await this.replacing(item.path, target, () => link(this.absolute(safeEntryPath(item.linkTarget ?? '')), target))
        this.result.files += 1
    }
  }

  /** Reads the content now (which checks it), and writes it while the next entries are read. */
  private async writeInBackground(relative: string, target: string | Buffer, item: ArchiveItem): Promise<void> {
    const pieces: Buffer[] = []
    for await (const piece of item.data) pieces.push(piece)
    const job = this.writeFile(relative, target, item, pieces)
      .catch((error: unknown) => {
        this.failure ??= { error }
      })
      .finally(() => this.inFlight.delete(relative))
    this.inFlight.set(relative, job)
    if (this.inFlight.size >= SMALL_FILES_IN_FLIGHT) await Promise.race(this.inFlight.values())
  }

  /** Waits for every background write; the first failure is thrown by the next write() or finishDirectories(). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight.values())
  }

  private async writeFile(
    relative: string,
    target: string | Buffer,
    item: ArchiveItem,
    data: AsyncIterable<Buffer> | Iterable<Buffer>
  ): Promise<void> {
    const fd = await this.replacing(relative, target, () => openFile(target, CREATE_NEW, 0o600))
    try {
      for await (const piece of data) {
        for (let offset = 0; offset < piece.length;) {
          offset += (await writeFile(fd, piece, offset, piece.length - offset)).bytesWritten
        }
        this.result.bytes += piece.length
      }
      await fchmod(fd, item.mode & KEPT_MODE_BITS)
      await futimes(fd, item.mtime, item.mtime)
    } finally {
      await closeFile(fd)
    }
  }

  /** Directory modes and mtimes, deepest first, once nothing more is written into them. */
  async finishDirectories(): Promise<void> {
    await this.settle()
    if (this.failure) throw this.failure.error
    const deepestFirst = [...this.made].sort((a, b) => b.split('/').length - a.split('/').length)
    for (const relative of deepestFirst) {
      const times = this.directoryTimes.get(relative)
      const directory = this.absolute(relative)
      await chmod(directory, (times?.mode ?? 0o755) & KEPT_MODE_BITS)
      if (times) await utimes(directory, times.mtime, times.mtime)
    }
  }

  private async makeParents(relative: string): Promise<void> {
    const segments = relative.split('/')
    for (let depth = 1; depth < segments.length; depth += 1) {
      const parent = segments.slice(0, depth).join('/')
      if (!this.made.has(parent)) await this.makeDirectory(parent)
    }
  }

  private async makeDirectory(relative: string): Promise<void> {
    try {
      await mkdir(this.absolute(relative), WORKING_DIR_MODE)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      // Only a name this disk treats as the same as another (case, Unicode form) gets here.
      throw collision(relative)
    }
    this.made.add(relative)
    this.result.directories += 1
  }

  /** The path to hand `fs`: the name's bytes when it is not UTF-8. */
  private absolute(relative: string): string | Buffer {
    return fsPath(path.join(this.root, ...relative.split('/')))
  }

  /**
   * Runs `create`; a name an earlier entry of the same name took (tar keeps the last) is removed
   * first, never followed. A name no entry wrote that exists all the same is another entry's name
   * on a disk that folds case or Unicode forms: replacing it would drop that entry without a word.
   */
  private async replacing<T>(relative: string, target: string | Buffer, create: () => Promise<T>): Promise<T> {
    try {
      return await create()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      if (!this.written.has(relative)) throw collision(relative)
      await unlink(target)
      return await create()
    } finally {
      this.written.add(relative)
    }
  }
}

function collision(relative: string): ArchiveError {
  return new ArchiveError(
    `The entry ${quotedName(relative)} collides with another entry of the archive on this disk (names that differ only in case or Unicode form); refusing the archive.`
  )
}
