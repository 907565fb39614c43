// Names are bytes: a workspace whose names are not UTF-8 (and hold line breaks, backslashes, control characters,
// long components and long paths) backs up with the built action in every format, and comes back byte for byte,
// names and link targets included, through the restore sub-action and through the system tools.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { actionInputs, backupJob, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { bytePath, listTreeAsBytes, writeByteNamedTree, type ByteNamedSpec, type TreeEntry } from '../harness/workspace.js'

const run = promisify(execFile)
const { svc, bucket, workspace } = await setUpTestFile('names', { 'data/plain.txt': 'plain\n' })

const LONG_SEGMENT = `seg-\xe9-${'x'.repeat(50)}`
/** Entries by their bytes (`\xNN` is that byte, not a character): not UTF-8, in file and directory names. */
const TREE: Array<readonly [string, ByteNamedSpec]> = [
  ['data/bad-\xff.txt', 'ff\n'],
  ['data/latin1-caf\xe9.txt', 'latin1\n'],
  ['data/\xff.bin', { size: 70_000 }],
  ['data/dir-\xfe\xff/inner.txt', 'inner\n'],
  ['data/dir-\xfe\xff/nested-\x80/deep\xc0\xaf.bin', { size: 3 * 1024 * 1024 + 5 }],
  ['data/empty-\xfd', { dir: true }],
  // Valid UTF-8 (é) beside a lone byte, and a surrogate's encoding, which is not UTF-8 either.
  ['data/mixed-\xc3\xa9-\xe9', 'mixed\n'],
  ['data/surrogate-\xed\xa0\x80', 'surrogate\n'],
  ['data/new\nline.txt', 'newline\n'],
  ['data/tab\there \x07bell', 'control\n'],
  ['data/back\\slash.txt', 'backslash\n'],
  ['data/sub\\..\\..\\not-an-escape.txt', 'backslashes are plain characters on Linux\n'],
  ['data/\\leading-backslash', 'leading\n'],
  ['data/C:drive-letter.txt', 'drive\n'],
  // One component over 100 bytes (ustar's name field), and a path over 255 bytes, with and without UTF-8.
  [`data/${'L\xff'.repeat(60)}`, 'long name\n'],
  [`data/${`${LONG_SEGMENT}/`.repeat(5)}leaf-\xff.txt`, 'long path, not UTF-8\n'],
  [`data/${'utf8-é-segment-of-some-length/'.repeat(9)}leaf.txt`, 'long path, UTF-8\n'],
  ['data/link-\xfe', { symlink: bytePath('bad-\xff.txt') }],
  ['data/link-to-dir', { symlink: bytePath('dir-\xfe\xff') }],
  ['data/dangling-\xfa', { symlink: bytePath('missing-\xfa') }]
]
await writeByteNamedTree(
  workspace.dir,
  TREE.map(([name, spec]) => [bytePath(name), spec] as const)
)
const scratch = await mkdtemp(path.join(os.tmpdir(), 'names-as-bytes-'))
after(() => rm(scratch, { recursive: true, force: true }))

/** What must come back: type, content (or target), mode (not for links), by name as bytes. */
function comparable(tree: Map<string, TreeEntry>): Record<string, unknown> {
  return Object.fromEntries(
    [...tree].map(([name, entry]) => [
      name,
      { type: entry.type, sha256: entry.sha256, mode: entry.type === 'symlink' ? 0 : entry.mode, target: entry.target }
    ])
  )
}

const EXTRACT = {
  tar: (archive: string, into: string) => ['tar', '-xf', archive, '-C', into],
  'tar.gz': (archive: string, into: string) => ['tar', '-xzf', archive, '-C', into],
  'tar.zst': (archive: string, into: string) => ['sh', '-c', `zstd -dc '${archive}' | tar -xf - -C '${into}'`],
  zip: (archive: string, into: string) => ['unzip', '-q', archive, '-d', into]
} as const

/**
 * Info-ZIP unzip 6.0 keeps only printable bytes and 128 to 254 of a name on Unix (unix/unix.c, mapname()): it
 * drops 0xFF and control characters whatever the archive holds. What it extracts is compared through that filter;
 * the exact names are read from the archive with Python's zipfile instead.
 */
function asUnzipWrites(tree: Map<string, TreeEntry>): Map<string, TreeEntry> {
  const kept = (name: string): string => [...name].filter(c => (c >= ' ' && c <= '~') || (c >= '\x80' && c <= '\xfe')).join('')
  return new Map([...tree].map(([name, entry]) => [kept(name), entry]))
}

/** Each member of the zip as Python's zipfile reads it: the raw name bytes, the UTF-8 flag, the comment, the content's SHA-256. */
const LIST_ZIP = `
import hashlib, json, sys, zipfile
members = []
for info in zipfile.ZipFile(sys.argv[1]).infolist():
    utf8 = bool(info.flag_bits & 0x800)
    raw = info.orig_filename.encode('utf-8' if utf8 else 'cp437')
    data = zipfile.ZipFile(sys.argv[1]).read(info)
    members.append([raw.decode('latin1'), info.external_attr >> 28, utf8, info.comment.decode('latin1'), hashlib.sha256(data).hexdigest()])
print(json.dumps(members))
`

describe('names as bytes', () => {
  const input = listTreeAsBytes(path.join(workspace.dir, 'data'))

  for (const format of ['zip', 'tar', 'tar.gz', 'tar.zst'] as const) {
    it(`${format}: every name comes back byte for byte, through the restore action and the system tool`, async () => {
      const row = await insertRow(svc)
      const job = await backupJob(svc, {
        workspace: workspace.dir,
        inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'data', format, verify: 'download' })
      })
      assert.equal(job.main.conclusion, 'success', job.main.stdout)
      assert.doesNotMatch(job.main.stdout, /Left out/)
      const expected = comparable(await input)
      assert.ok(Object.keys(expected).length >= TREE.length, 'the whole tree is compared')

      const destination = path.join(scratch, format, 'restored')
      const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': row.id, path: destination }))
      assert.equal(restore.conclusion, 'success', restore.stdout)
      assert.deepEqual(comparable(await listTreeAsBytes(path.join(destination, 'data'))), expected)

      const { s3_key: key } = await readRow(svc, row.id)
      const archive = path.join(scratch, `backup.${format}`)
      await writeFile(archive, await svc.s3.getObject(bucket, key ?? ''))
      const into = path.join(scratch, format, 'system-tool')
      await mkdir(into, { recursive: true })
      const [command, ...args] = EXTRACT[format](archive, into)
      await run(command as string, args)
      const extracted = comparable(await listTreeAsBytes(path.join(into, 'data')))
      if (format !== 'zip') {
        assert.deepEqual(extracted, expected)
        return
      }
      assert.deepEqual(extracted, comparable(asUnzipWrites(await input)))
      assert.match(job.main.stdout, /paths are not UTF-8: zip stores them as raw bytes without its UTF-8 flag/)
      const { stdout } = await run('python3', ['-c', LIST_ZIP, archive])
      const members = JSON.parse(stdout) as Array<[string, number, boolean, string, string]>
      const TYPES: Record<number, string> = { 0o10: 'file', 0o04: 'dir', 0o12: 'symlink' }
      const read = Object.fromEntries(members.map(([name, kind, , , sha256]) => [name.replace(/\/$/, ''), { type: TYPES[kind], sha256 }]))
      const wanted = Object.fromEntries(
        [...(await input)].map(([name, entry]) => [
          `data/${name}`,
          { type: entry.type, sha256: entry.sha256 ?? 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }
        ])
      )
      assert.deepEqual(read, { data: read.data, ...wanted })
      for (const [name, , utf8, comment] of members) {
        const raw = Buffer.from(name, 'latin1')
        const isUtf8 = Buffer.from(raw.toString('utf8')).equals(raw)
        assert.equal(utf8, isUtf8, `UTF-8 flag of ${JSON.stringify(name)}`)
        assert.equal(comment === '', isUtf8, `note of ${JSON.stringify(name)}`)
      }
    })
  }
})
