// A generated tree that looks like a real backup: about a third incompressible (media, archives),
// the rest text of several kinds (source, logs, JSON), spread over many small files, some medium
// ones and a few large ones, with empty directories and symlinks. Deterministic for a given size.
import { randomBytes } from 'node:crypto'
import { mkdir, open, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'

const KiB = 1024
const MiB = 1024 * KiB

export interface TreeStats {
  files: number
  bytes: number
}

/**
 * Text with the redundancy of real text and none of the long-range repetition a compressor could
 * exploit beyond its window: lines drawn from a vocabulary by a seeded generator, in a corpus
 * larger than any window used here (deflate 32 KiB, zstd -3 2 MiB); files are slices of it.
 */
class TextCorpus {
  private readonly corpus: Buffer
  private state: number
  constructor(seed: number, size = 24 * MiB) {
    this.state = seed >>> 0
    const words = Array.from({ length: 4096 }, (_, i) => this.word(3 + (i % 9)))
    const lines: string[] = []
    let length = 0
    const pick = (): string => words[this.next(words.length)] as string
    while (length < size) {
      const kind = this.next(4)
      const line =
        kind === 0
          ? `2024-05-${String(1 + this.next(28)).padStart(2, '0')}T${this.next(24)}:${this.next(60)}:${this.next(60)}.${this.next(1000)}Z INFO ${pick()} ${pick()} id=${this.next(1e9)} took=${this.next(5000)}ms`
          : kind === 1
            ? `  {"${pick()}": "${pick()} ${pick()}", "count": ${this.next(100000)}, "ok": ${this.next(2) === 1}},`
            : kind === 2
              ? `${'  '.repeat(this.next(4))}const ${pick()} = ${pick()}(${pick()}, ${this.next(1000)}) // ${pick()} ${pick()}`
              : Array.from({ length: 4 + this.next(10) }, pick).join(' ')
      lines.push(line)
      length += line.length + 1
    }
    this.corpus = Buffer.from(lines.join('\n'))
  }

  /** mulberry32: a small seeded generator, uniform enough for picking words. */
  next(n: number): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) % n
  }

  private word(length: number): string {
    const letters = 'etaoinshrdlcumwfgypbvkjxqz'
    let w = ''
    for (let i = 0; i < length; i++) w += letters[Math.min(this.next(26), this.next(26))]
    return w
  }

  slice(size: number): Buffer {
    const start = this.next(Math.max(1, this.corpus.length - size))
    return this.corpus.subarray(start, start + size)
  }
}

/** Writes a tree of about `size` bytes under `root` (which must not exist yet). */
export async function generateTree(root: string, size: number): Promise<TreeStats> {
  const text = new TextCorpus(size % 2 ** 31)
  const stats: TreeStats = { files: 0, bytes: 0 }
  const rand = (n: number): number => text.next(n)
  const put = async (relative: string, bytes: number, random: boolean): Promise<void> => {
    const file = path.join(root, relative)
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, random ? randomBytes(bytes) : text.slice(bytes))
    stats.files += 1
    stats.bytes += bytes
  }
  const writeLarge = async (relative: string, bytes: number, random: boolean): Promise<void> => {
    const file = path.join(root, relative)
    await mkdir(path.dirname(file), { recursive: true })
    const handle = await open(file, 'w')
    try {
      for (let written = 0; written < bytes; written += 8 * MiB) {
        const n = Math.min(8 * MiB, bytes - written)
        await handle.write(random ? randomBytes(n) : text.slice(n))
      }
    } finally {
      await handle.close()
    }
    stats.files += 1
    stats.bytes += bytes
  }

  // A third incompressible: two large media files and many medium ones (photos, archives).
  const incompressible = Math.floor(size / 3)
  await writeLarge('media/video-1.mp4', Math.floor(incompressible * 0.3), true)
  await writeLarge('media/video-2.mp4', Math.floor(incompressible * 0.2), true)
  for (let left = Math.floor(incompressible / 2), i = 0; left > 0; i++) {
    const bytes = Math.min(left, 64 * KiB + rand(3 * MiB))
    await put(`uploads/${String(i % 50).padStart(2, '0')}/photo-${i}.jpg`, bytes, true)
    left -= bytes
  }
  // Text: a large log and a database dump, medium files, and many small source files.
  const compressible = size - incompressible
  await writeLarge('logs/app.log', Math.floor(compressible * 0.25), false)
  await writeLarge('db/dump.sql', Math.floor(compressible * 0.15), false)
  for (let left = Math.floor(compressible * 0.25), i = 0; left > 0; i++) {
    const bytes = Math.min(left, 32 * KiB + rand(2 * MiB))
    await put(`data/${String(i % 20).padStart(2, '0')}/records-${i}.json`, bytes, false)
    left -= bytes
  }
  for (let left = Math.floor(compressible * 0.35), i = 0; left > 0; i++) {
    const bytes = Math.min(left, 200 + rand(20 * KiB))
    await put(`src/module-${i % 400}/${i % 7}/file-${i}.ts`, bytes, false)
    left -= bytes
  }
  for (let i = 0; i < 20; i++) await mkdir(path.join(root, `cache/empty-${i}`), { recursive: true })
  // Links to files, not directories: `zip -r -` cannot store links into a pipe, so it follows them.
  await mkdir(path.join(root, 'links'))
  for (let i = 0; i < 20; i++) await symlink(`../src/module-${i}/${i % 7}/file-${i}.ts`, path.join(root, `links/link-${i}`))
  return stats
}
