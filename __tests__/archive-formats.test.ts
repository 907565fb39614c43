// Every format round-trips through the standard tools: what comes out equals what went in.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { createArchive } from '../src/archive.js'
import { collectEntries } from '../src/files.js'
import type { ArchiveFormat } from '../src/inputs.js'
import { listTree, makeWorkspace, type TreeEntry, type Workspace } from './harness/workspace.js'

const run = promisify(execFile)
const LONG_DIR = `deep/${'nested-directory-name/'.repeat(6)}`

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
})
after(async () => {
  await workspace.cleanup()
  await rm(scratch, { recursive: true, force: true })
})

function comparable(tree: Map<string, TreeEntry>): Record<string, unknown> {
  return Object.fromEntries(
    [...tree].map(([name, entry]) => [
      name,
      { type: entry.type, sha256: entry.sha256, mode: entry.type === 'symlink' ? 0 : entry.mode & 0o111 }
    ])
  )
}

describe('archive formats', () => {
  for (const format of ['zip', 'tar', 'tar.gz', 'tar.zst'] as const) {
    it(`${format} extracts with the standard tool to exactly the selected tree`, async () => {
      const entries = await collectEntries(['data', '!data/tmp'], { workspace: workspace.dir, includeHiddenFiles: false })
      const archive = path.join(scratch, `backup.${format}`)
      await pipeline(createArchive(entries, format, undefined).stream, createWriteStream(archive))
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
    })
  }

  it('includes dot files only when asked', async () => {
    const entries = await collectEntries(['data'], { workspace: workspace.dir, includeHiddenFiles: true })
    assert.ok(entries.some(entry => entry.relativePath === 'data/.hidden'))
  })

  it('lists entries in a deterministic order', async () => {
    const first = await collectEntries(['data', 'other'], { workspace: workspace.dir, includeHiddenFiles: false })
    const second = await collectEntries(['other', 'data'], { workspace: workspace.dir, includeHiddenFiles: false })
    assert.deepEqual(
      first.map(e => e.relativePath),
      second.map(e => e.relativePath)
    )
  })

  it('fails clearly when nothing matches', async () => {
    await assert.rejects(collectEntries(['missing/**'], { workspace: workspace.dir, includeHiddenFiles: false }), /No files matched 'path'/)
  })
})
