// Every format round-trips through the standard tools: what comes out equals what went in (content,
// types, modes, mtimes), and the parallel compressors' output passes each tool's own integrity check.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { lstat, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { archiveStream } from '../harness/archive-stream.js'
import { collectEntries } from '../../src/sources/files/collect.js'
import type { ArchiveFormat } from '../../src/archive/formats.js'
import { listTree, makeWorkspace, randomBytesSeeded, type TreeEntry, type Workspace } from '../harness/workspace.js'

const run = promisify(execFile)
const LONG_DIR = `deep/${'nested-directory-name/'.repeat(6)}`
const MTIME = new Date('2021-03-04T05:06:08Z')

/** Compressible but not trivially: hex of random bytes, 9 MiB, so several gzip blocks and zstd frames. */
const TEXT = Buffer.from(randomBytesSeeded(42, 9 * 512 * 1024).toString('hex'))

const INTEGRITY: Record<ArchiveFormat, (archive: string) => string[]> = {
  zip: archive => ['unzip', '-tq', archive],
  tar: archive => ['tar', '-tf', archive],
  'tar.gz': archive => ['gzip', '-t', archive],
  'tar.zst': archive => ['zstd', '-tq', archive]
}

const EXTRACT: Record<ArchiveFormat, (archive: string, into: string) => string[]> = {
  zip: (archive, into) => ['unzip', '-q', archive, '-d', into],
  tar: (archive, into) => ['tar', '-xf', archive, '-C', into],
  'tar.gz': (archive, into) => ['tar', '-xzf', archive, '-C', into],
  'tar.zst': (archive, into) => ['sh', '-c', `zstd -dc '${archive}' | tar -xf - -C '${into}'`]
}

let workspace: Workspace
let scratch: string

before(async () => {
  workspace = await makeWorkspace({
    files: {
      'data/plain.txt': 'hello\n',
      'data/empty.bin': '',
      'data/random.bin': { size: 3 * 1024 * 1024 + 17 },
      'data/text.log': TEXT,
      'data/private.key': { content: 'k\n', mode: 0o600 },
      'data/locked': { dir: true, mode: 0o700 },
      'data/run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
      'data/ünïcødé ☃.txt': 'snow\n',
      'data/-leading dash.txt': 'dash\n',
      'data/empty-dir': { dir: true },
      'data/link-to-plain': { symlink: 'plain.txt' },
      [`data/${LONG_DIR}file-with-a-long-name.txt`]: 'long\n',
      'data/.hidden': 'not archived by default\n',
      'data/tmp/excluded.log': 'excluded\n',
      'other/not-selected.txt': 'no\n'
    }
  })
  scratch = await mkdtemp(path.join(os.tmpdir(), 'archive-formats-'))
  for (const name of ['data/plain.txt', 'data/text.log', 'data/empty-dir']) await utimes(path.join(workspace.dir, name), MTIME, MTIME)
})
after(async () => {
  await workspace.cleanup()
  await rm(scratch, { recursive: true, force: true })
})

function comparable(tree: Map<string, TreeEntry>): Record<string, unknown> {
  return Object.fromEntries(
    [...tree].map(([name, entry]) => [
      name,
      { type: entry.type, sha256: entry.sha256, mode: entry.type === 'symlink' ? 0 : entry.mode & 0o777 }
    ])
  )
}

describe('archive formats', () => {
  for (const format of ['zip', 'tar', 'tar.gz', 'tar.zst'] as const) {
    it(`${format} extracts with the standard tool to exactly the selected tree`, async () => {
      const entries = await collectEntries(['data', '!data/tmp'], { workspace: workspace.dir, includeHiddenFiles: false })
      const archive = path.join(scratch, `backup.${format}`)
      await pipeline(archiveStream(entries, format, undefined), createWriteStream(archive))
      const [check, ...checkArgs] = INTEGRITY[format](archive)
      await run(check as string, checkArgs)
      const into = await mkdtemp(path.join(scratch, `${format}-`))
      const [command, ...args] = EXTRACT[format](archive, into)
      await run(command as string, args)

      const expected = await workspace.listTree()
      for (const name of [...expected.keys()]) {
        if (!name.startsWith('data') || name === 'data/.hidden' || name.startsWith('data/tmp')) expected.delete(name)
      }
      const actual = await listTree(into)
      assert.deepEqual(comparable(actual), comparable(expected))
      assert.equal(actual.get('data/link-to-plain')?.target, 'plain.txt')
      for (const name of ['data/plain.txt', 'data/text.log', 'data/empty-dir']) {
        assert.equal((await lstat(path.join(into, name))).mtime.getTime(), MTIME.getTime(), `${name} keeps its mtime`)
      }
    })
  }

  it('writes several zstd frames and one gzip member, as the system tools see them', async () => {
    const entries = await collectEntries(['data'], { workspace: workspace.dir, includeHiddenFiles: false })
    const zst = path.join(scratch, 'frames.tar.zst')
    await pipeline(archiveStream(entries, 'tar.zst', 3), createWriteStream(zst))
    const { stdout: frames } = await run('zstd', ['-lv', zst])
    assert.ok(Number(/# Zstandard Frames: (\d+)/.exec(frames)?.[1]) >= 3, frames)
    const gz = path.join(scratch, 'member.tar.gz')
    await pipeline(archiveStream(entries, 'tar.gz', 6), createWriteStream(gz))
    // gzip -l reads the last member's trailer: with one member it is the whole uncompressed size.
    const { stdout: listed } = await run('sh', ['-c', `gzip -dc '${gz}' | wc -c; gzip -l '${gz}'`])
    const [bytes, , line] = listed.trim().split('\n')
    assert.equal(line?.trim().split(/\s+/)[1], bytes?.trim())
  })

  it('fails with a clear error when a file vanishes or changes size after listing', async () => {
    const victim = path.join(workspace.dir, 'data/vanishing.txt')
    for (const [change, message] of [
      [() => rm(victim), /data\/vanishing\.txt disappeared while the archive was being built/],
      [
        () => writeFile(victim, 'longer than before\n'),
        /data\/vanishing\.txt changed size while it was being archived \(7 bytes when listed, 8\+ read\)/
      ],
      [() => writeFile(victim, 'x'), /data\/vanishing\.txt changed size while it was being archived \(7 bytes when listed, 1 read\)/]
    ] as const) {
      await writeFile(victim, 'before\n')
      const entries = await collectEntries(['data'], { workspace: workspace.dir, includeHiddenFiles: false })
      await change()
      for (const format of ['zip', 'tar.gz'] as const) {
        await assert.rejects(pipeline(archiveStream(entries, format, undefined), createWriteStream(path.join(scratch, 'broken'))), message)
      }
    }
    await rm(victim, { force: true })
  })

  it('includes dot files only when asked', async () => {
    const entries = await collectEntries(['data'], { workspace: workspace.dir, includeHiddenFiles: true })
    assert.ok([...entries].some(entry => entry.relativePath === 'data/.hidden'))
  })

  it('lists entries in a deterministic order', async () => {
    const first = await collectEntries(['data', 'other'], { workspace: workspace.dir, includeHiddenFiles: false })
    const second = await collectEntries(['other', 'data'], { workspace: workspace.dir, includeHiddenFiles: false })
    assert.deepEqual(
      [...first].map(e => e.relativePath),
      [...second].map(e => e.relativePath)
    )
  })

  it('fails clearly when nothing matches', async () => {
    await assert.rejects(collectEntries(['missing/**'], { workspace: workspace.dir, includeHiddenFiles: false }), /No files matched 'path'/)
  })
})
