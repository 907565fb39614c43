// The archive readers on their own: what standard tools write (GNU tar long names, hardlinks, pax,
// Info-ZIP), multi-member gzip, multi-frame zstd, and the name and link rules, without services.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import zlib from 'node:zlib'
import { checkSymlinkTarget, safeEntryPath } from '../../../src/extract/entry.js'
import { readArchiveEntries, type DownloadSummary } from '../../../src/extract/read-archive.js'
import { fileSource } from '../../../src/extract/source.js'
import { tarOf } from '../../harness/archives.js'

const scratch = await mkdtemp(path.join(os.tmpdir(), 'archive-reader-'))
after(() => rm(scratch, { recursive: true, force: true }))
const LIMITS = { maxRatio: 1000, maxBytes: undefined }

async function entriesOf(bytes: Buffer): Promise<{ entries: string[]; summary: DownloadSummary }> {
  const file = path.join(scratch, `archive-${Math.random()}`)
  await writeFile(file, bytes)
  const entries: string[] = []
  const reading = readArchiveEntries(await fileSource(file), { limits: LIMITS })
  for (;;) {
    const next = await reading.next()
    if (next.done) return { entries, summary: next.value }
    entries.push(`${next.value.type} ${next.value.path} ${next.value.size}`)
  }
}

describe('archive readers', () => {
  it('read what GNU tar and Info-ZIP write: long names, hardlinks, symlinks', async () => {
    const tree = path.join(scratch, 'tree')
    const long = `${'long-name-segment-'.repeat(8)}/${'x'.repeat(120)}.txt`
    await mkdir(path.join(tree, path.dirname(long)), { recursive: true })
    await writeFile(path.join(tree, long), 'long\n')
    await writeFile(path.join(tree, 'one'), 'shared\n')
    await link(path.join(tree, 'one'), path.join(tree, 'two'))
    await symlink('one', path.join(tree, 'link'))
    for (const [name, command] of [
      ['gnu.tar', `tar --format=gnu -cf ../gnu.tar .`],
      ['pax.tar', `tar --format=pax -cf ../pax.tar .`],
      ['info.zip', `zip -qry ../info.zip .`]
    ]) {
      execFileSync('sh', ['-c', `cd '${tree}' && ${command}`])
      const { entries } = await entriesOf(await import('node:fs/promises').then(fs => fs.readFile(path.join(scratch, name as string))))
      assert.ok(entries.includes(`file ${long} 5`), `${name}: ${entries.join(', ')}`)
      assert.ok(entries.includes('symlink link 0'), `${name}: ${entries.join(', ')}`)
      assert.ok(
        entries.some(entry => /^(hardlink|file) two/.test(entry)),
        `${name}: ${entries.join(', ')}`
      )
    }
  })

  it('decode multi-member gzip and multi-frame zstd as one tar', async () => {
    const [first, second] = [await tarOf([{ name: 'a.txt', content: 'a' }]), await tarOf([{ name: 'b.txt', content: 'b' }])]
    // The first tar's end blocks are cut so the two halves make one archive.
    const head = (first as Buffer).subarray(0, 1024)
    const gz = Buffer.concat([zlib.gzipSync(head), zlib.gzipSync(second as Buffer)])
    assert.deepEqual((await entriesOf(gz)).entries, ['file a.txt 1', 'file b.txt 1'])
    const zst = Buffer.concat([zlib.zstdCompressSync(head), zlib.zstdCompressSync(second as Buffer)])
    const { entries, summary } = await entriesOf(zst)
    assert.deepEqual(entries, ['file a.txt 1', 'file b.txt 1'])
    assert.equal(summary.format, 'tar.zst')
    assert.equal(summary.bytes, zst.length)
  })

  it('read an empty zip, and refuse bytes that are no archive', async () => {
    const empty = Buffer.alloc(22)
    empty.writeUInt32LE(0x06054b50, 0)
    assert.deepEqual((await entriesOf(empty)).entries, [])
    await assert.rejects(entriesOf(Buffer.from('just some text, not an archive')), /is not a zip, gzip, zstd or tar archive/)
  })

  it('refuse names that leave the tree, and links that point out of it', () => {
    assert.equal(safeEntryPath('./data//sub/'), 'data/sub')
    assert.equal(safeEntryPath('./'), '')
    for (const name of ['../x', 'a/../../x', '/etc/passwd']) assert.throws(() => safeEntryPath(name), /refusing the archive/)
    checkSymlinkTarget('a/b/link', '../../file')
    checkSymlinkTarget('a/link', 'sub/file')
    for (const name of ['C:\\x', 'a\\..\\..\\x', '\\x', 'c:notes.txt']) {
      // A separator and a drive on Windows; on Linux, characters of a name a workspace may hold.
      assert.throws(() => safeEntryPath(name, 'win32'), /refusing the archive/)
      assert.equal(safeEntryPath(name, 'linux'), name)
    }
    assert.throws(() => checkSymlinkTarget('link', 'C:\\x', 'win32'), /refusing the archive/)
    assert.throws(() => checkSymlinkTarget('link', '..\\..\\x', 'win32'), /refusing the archive/)
    checkSymlinkTarget('link', '..\\..\\x', 'linux')
    for (const [link, target] of [
      ['a/link', '../../x'],
      ['link', '/etc'],
      ['a/link', 'sub/../..'],
      ['a/link', '']
    ] as const) {
      assert.throws(() => checkSymlinkTarget(link, target), /refusing the archive/, `${link} -> ${target}`)
    }
  })
})
