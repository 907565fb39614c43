// The `path` input: which entries a list of lines selects (@actions/glob's semantics, walked by src/files.ts).
import * as glob from '@actions/glob'
import assert from 'node:assert/strict'
import { lstat } from 'node:fs/promises'
import path from 'node:path'
import { after, before, it } from 'node:test'
import { collectEntries } from '../../../src/sources/files/collect.js'
import { makeWorkspace, type Workspace } from '../../harness/workspace.js'

let workspace: Workspace

before(async () => {
  workspace = await makeWorkspace({
    files: {
      'app/src/main.ts': 'main',
      'app/src/util.ts': 'util',
      'app/src/.hidden.ts': 'hidden',
      'app/build/out.js': 'out',
      'app/build/keep/keep.js': 'keep',
      'app/logs/a.log': 'a',
      'app/logs/deep/b.log': 'b',
      'app/empty': { dir: true },
      'app/link': { symlink: 'src/main.ts' },
      'app/outside': { symlink: '../../..' },
      '.config/settings': 'settings',
      'db/dump.sql': 'dump',
      'db/[brackets].sql': 'brackets',
      'top.txt': 'top'
    }
  })
})

after(() => workspace.cleanup())

async function list(lines: string[], includeHiddenFiles = false): Promise<string[]> {
  const entries = await collectEntries(lines, { workspace: workspace.dir, includeHiddenFiles })
  return [...entries].map(entry => (entry.type === 'directory' ? `${entry.relativePath}/` : entry.relativePath))
}

it('brings a directory with every descendant, empty directories included, sorted by path', async () => {
  assert.deepEqual(await list(['app/src', 'app/empty']), ['app/empty/', 'app/src/', 'app/src/main.ts', 'app/src/util.ts'])
})

it('names single files, and globs with * and **', async () => {
  assert.deepEqual(await list(['db/dump.sql', 'top.txt']), ['db/dump.sql', 'top.txt'])
  assert.deepEqual(await list(['app/**/*.log']), ['app/logs/a.log', 'app/logs/deep/b.log'])
  assert.deepEqual(await list(['app/src/*.ts']), ['app/src/main.ts', 'app/src/util.ts'])
})

it('excludes with !, and a later line includes again', async () => {
  assert.deepEqual(await list(['app/build', '!app/build/keep']), ['app/build/', 'app/build/out.js'])
  assert.deepEqual(await list(['app/build', '!app/build/**', 'app/build/keep/keep.js']), ['app/build/keep/keep.js'])
  assert.deepEqual(await list(['app/logs', 'top.txt', '!**/*.log']), ['app/logs/', 'app/logs/deep/', 'top.txt'])
})

it('matches only directories (and what they hold) with a trailing slash', async () => {
  const selected = await list(['app/*/'])
  assert.ok(selected.includes('app/build/keep/keep.js'))
  assert.ok(!selected.includes('app/link') && !selected.includes('app/outside'))
})

it('leaves dot files out unless include-hidden-files, even when named', async () => {
  assert.deepEqual(await list(['.config', 'app/src']), ['app/src/', 'app/src/main.ts', 'app/src/util.ts'])
  assert.deepEqual(await list(['.config', 'app/src'], true), [
    '.config/',
    '.config/settings',
    'app/src/',
    'app/src/.hidden.ts',
    'app/src/main.ts',
    'app/src/util.ts'
  ])
})

it('lists symlinks as links and never follows them, even out of the workspace', async () => {
  const entries = await collectEntries(['app/link', 'app/outside'], { workspace: workspace.dir, includeHiddenFiles: false })
  assert.deepEqual(
    [...entries].map(entry => [entry.relativePath, entry.type, entry.linkTarget]),
    [
      ['app/link', 'symlink', 'src/main.ts'],
      ['app/outside', 'symlink', '../../..']
    ]
  )
})

it('takes . as the whole workspace and skips lines naming nothing', async () => {
  const everything = await list(['.'])
  assert.ok(everything.includes('top.txt') && everything.includes('app/logs/deep/b.log') && !everything.includes('.config/'))
  assert.deepEqual(await list(['missing', 'top.txt']), ['top.txt'])
})

it('selects exactly what @actions/glob selects, for every kind of line', async () => {
  const cases = [
    ['app'],
    ['app/src', 'app/empty'],
    ['app/**/*.log'],
    ['**/*.ts'],
    ['app/*'],
    ['app/*/'],
    ['app/**'],
    ['*/'],
    ['./db', 'top.txt'],
    ['app', '!app/build', 'app/build/keep'],
    ['app', '!**/*.log', '!app/src/'],
    ['db/\\[brackets\\].sql', 'top.txt'],
    ['db/[bd]*.sql'],
    ['.']
  ]
  for (const lines of cases) {
    for (const includeHiddenFiles of [false, true]) {
      assert.deepEqual(
        await list(lines, includeHiddenFiles),
        await listWithActionsGlob(lines, includeHiddenFiles),
        `${lines.join(', ')} (hidden: ${includeHiddenFiles})`
      )
    }
  }
})

/** The reference: @actions/glob over the same lines, as the action listed entries before it walked the tree itself. */
async function listWithActionsGlob(lines: string[], includeHiddenFiles: boolean): Promise<string[]> {
  const anchored = lines.map(line =>
    line.startsWith('!') ? `!${path.join(workspace.dir, line.slice(1))}` : path.join(workspace.dir, line)
  )
  const globber = await glob.create(anchored.join('\n'), {
    followSymbolicLinks: false,
    implicitDescendants: true,
    matchDirectories: true,
    omitBrokenSymbolicLinks: false,
    excludeHiddenFiles: !includeHiddenFiles
  })
  const selected = new Set<string>()
  for await (const found of globber.globGenerator()) {
    const relative = path.relative(workspace.dir, found)
    if (relative === '') continue
    selected.add((await lstat(found)).isDirectory() ? `${relative}/` : relative)
  }
  return [...selected].sort((a, b) => (a.replace(/\/$/, '') < b.replace(/\/$/, '') ? -1 : 1))
}
