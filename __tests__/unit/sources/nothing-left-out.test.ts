// Nothing `path` matches is left out without a word: every kind of entry is listed as it is, or the listing
// (or the read after it) fails naming it, shown unambiguously when the name is not UTF-8.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { chmod, link, mkdir, mkdtemp, rm, symlink, unlink } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import { nameBytes } from '../../../src/archive/names.js'
import { collectEntries } from '../../../src/sources/files/collect.js'
import { Listing } from '../../../src/sources/files/listing.js'
import { archiveStream } from '../../harness/archive-stream.js'
import { bytePath, writeByteNamedTree } from '../../harness/workspace.js'

const run = promisify(execFile)
const NOBODY = 65534
let scratch: string

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'nothing-left-out-'))
  await chmod(scratch, 0o755)
})
after(() => rm(scratch, { recursive: true, force: true }))

async function tree(name: string, entries: Parameters<typeof writeByteNamedTree>[1]): Promise<string> {
  const root = path.join(scratch, name)
  await mkdir(root, { mode: 0o755 })
  await writeByteNamedTree(root, entries)
  return root
}

const listed = async (root: string, includeHiddenFiles = false): Promise<Map<string, string>> =>
  new Map(
    [...(await collectEntries(['data'], { workspace: root, includeHiddenFiles }))].map(entry => [
      nameBytes(entry.relativePath).toString('latin1'),
      entry.type + (entry.linkTarget === undefined ? '' : ` -> ${nameBytes(entry.linkTarget).toString('latin1')}`)
    ])
  )

it('lists empty directories, dangling links, links with targets that are not UTF-8, and both names of a hard link', async () => {
  const root = await tree('kinds', [
    [bytePath('data/empty'), { dir: true }],
    [bytePath('data/file.txt'), 'content'],
    [bytePath('data/dangling'), { symlink: bytePath('nowhere') }],
    [bytePath('data/link'), { symlink: bytePath('target-\xff') }]
  ])
  await link(path.join(root, 'data/file.txt'), path.join(root, 'data/hard-link.txt'))
  assert.deepEqual(
    await listed(root),
    new Map([
      ['data', 'directory'],
      ['data/dangling', 'symlink -> nowhere'],
      ['data/empty', 'directory'],
      ['data/file.txt', 'file'],
      ['data/hard-link.txt', 'file'],
      ['data/link', 'symlink -> target-\xff']
    ])
  )
})

it('fails naming a FIFO (or socket, or device), escaped when the name is not UTF-8, with a line that excludes it', async () => {
  const root = await tree('fifo', [[bytePath('data/file.txt'), 'content']])
  // Arguments are strings to execFile: the shell's printf spells the bytes (0xFF, a line break).
  await run('sh', ['-c', `mkfifo "$(printf '${root}/data/pipe-\\377\\nx')"`])
  await assert.rejects(
    collectEntries(['data'], { workspace: root, includeHiddenFiles: false }),
    (error: Error) =>
      error.message.includes(`"data/pipe-\\xff\\nx" is not a regular file, directory or symlink`) &&
      error.message.includes(`'!data/pipe-??x'`)
  )
})

it('fails naming a directory it may not read (EACCES), and says how to fix it', async () => {
  const root = await tree('locked', [
    [bytePath('data/open/file.txt'), 'content'],
    [bytePath('data/locked-\xfe/secret.txt'), 'secret']
  ])
  await chmod(Buffer.concat([Buffer.from(`${root}/`), bytePath('data/locked-\xfe')]), 0o000)
  after(() => chmod(Buffer.concat([Buffer.from(`${root}/`), bytePath('data/locked-\xfe')]), 0o755))
  const expected =
    /"data\/locked-\\xfe" could not be read \(EACCES\)\. Give the runner's user read access to it, or exclude it with '!data\/locked-\?'/
  if (process.getuid?.() !== 0) {
    await assert.rejects(collectEntries(['data'], { workspace: root, includeHiddenFiles: false }), expected)
    return
  }
  // root reads anything: list as nobody instead, in a child process.
  const script = `
    import { collectEntries } from ${JSON.stringify(path.resolve('src/sources/files/collect.ts'))}
    try { await collectEntries(['data'], { workspace: ${JSON.stringify(root)}, includeHiddenFiles: false }); console.log('listed') }
    catch (error) { console.log(error.message) }`
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { uid: NOBODY, gid: NOBODY })
  assert.match(stdout, expected)
})

it('counts the dot entries it leaves out, and names the first ones', async () => {
  const root = await tree('hidden', [
    [bytePath('data/.env'), 'secret'],
    [bytePath('data/.cache/a'), 'a'],
    [bytePath('data/kept.txt'), 'kept']
  ])
  const listing = await collectEntries(['data'], { workspace: root, includeHiddenFiles: false })
  assert.deepEqual(
    [...listing].map(entry => entry.relativePath),
    ['data', 'data/kept.txt']
  )
  assert.deepEqual(listing.hidden, { count: 2, examples: ['data/.cache', 'data/.env'] })
  assert.equal((await collectEntries(['data'], { workspace: root, includeHiddenFiles: true })).hidden.count, 0)
})

it('fails the archive when a file goes, or becomes a symlink, after the listing, naming it as bytes', async () => {
  const root = await tree('changes', [
    [bytePath('data/gone-\xff'), 'content'],
    [bytePath('data/swapped'), 'content'],
    [bytePath('data/elsewhere'), 'content']
  ])
  const at = (name: string): Buffer => Buffer.concat([Buffer.from(`${root}/`), bytePath(name)])
  for (const [change, message] of [
    [() => unlink(at('data/gone-\xff')), /"data\/gone-\\xff" disappeared while the archive was being built/],
    [
      async () => {
        await unlink(at('data/swapped'))
        await symlink('elsewhere', at('data/swapped'))
      },
      /data\/swapped was replaced by a symlink while the archive was being built/
    ]
  ] as const) {
    const listing = await collectEntries(['data'], { workspace: root, includeHiddenFiles: false })
    await change()
    for (const format of ['zip', 'tar'] as const) {
      await assert.rejects(pipeline(archiveStream(listing, format, undefined), createWriteStream(path.join(scratch, 'broken'))), message)
    }
  }
})

it('finds a listed path that is a source folder or lies under it, and nothing that only starts like it', () => {
  const listing = new Listing('/workspace')
  for (const relativePath of ['databases/x.sql', 'data/database', 'storage2', 'storage/avatars/a.png'])
    listing.add({ relativePath, type: 'file', size: 1, mode: 0o644, mtimeSeconds: 0, linkTarget: undefined })
  assert.equal(listing.firstUnder('database'), undefined)
  assert.equal(listing.firstUnder('storage'), 'storage/avatars/a.png')
})
