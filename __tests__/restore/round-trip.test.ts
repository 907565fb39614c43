// Backup, then restore with the restore sub-action: the restored tree equals the input byte for byte
// (contents, paths, empty dirs, modes, mtimes, symlinks as links), for every format.
import assert from 'node:assert/strict'
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { actionInputs, backupJob, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { listTree, randomBytesSeeded, type TreeEntry } from '../harness/workspace.js'

const MiB = 1024 * 1024
const MANY = 10_000
/** Compressible text larger than a zstd frame (4 MiB) and a gzip block: several frames, one member. */
const TEXT = Buffer.from(randomBytesSeeded(7, 3 * MiB).toString('hex'))

const manyFiles = Object.fromEntries(
  Array.from({ length: MANY }, (_, index) => [`many/d${index % 40}/file ${index}.txt`, `file ${index}\n`])
)
const { svc, bucket, workspace } = await setUpTestFile('restore', {
  'data/notes.txt': 'hello\n',
  'data/empty.bin': '',
  'data/random.bin': { size: 2 * MiB + 3 },
  'data/text.log': TEXT,
  'data/run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'data/private.key': { content: 'k\n', mode: 0o600 },
  'data/with space/ünïcødé ☃ name.txt': 'snow\n',
  'data/-leading-dash.txt': 'dash\n',
  'data/--rf': 'not an option\n',
  'data/empty-dir': { dir: true },
  'data/locked-dir': { dir: true, mode: 0o700 },
  'data/sub/link-to-notes': { symlink: '../notes.txt' },
  'data/sub/link-to-dir': { symlink: '../with space' },
  [`data/${'a-rather-long-directory-name/'.repeat(7)}leaf.txt`]: 'long\n',
  ...manyFiles
})
const scratch = await mkdtemp(path.join(os.tmpdir(), 'restore-round-trip-'))
after(() => rm(scratch, { recursive: true, force: true }))

/** What "byte for byte" means here: type, content (or link target), permission bits and, but for links, mtime. */
function comparable(tree: Map<string, TreeEntry>, mtimes: Map<string, number>): Record<string, unknown> {
  return Object.fromEntries(
    [...tree].map(([name, entry]) => [
      name,
      {
        type: entry.type,
        sha256: entry.sha256,
        mode: entry.type === 'symlink' ? 0 : entry.mode,
        mtime: entry.type === 'symlink' ? 0 : mtimes.get(name)
      }
    ])
  )
}

/** The tree below `root/top`, with `top` itself (the archive holds it too). */
async function snapshot(root: string, top: string): Promise<Record<string, unknown>> {
  const tree = await listTree(path.join(root, top))
  const mtimes = new Map<string, number>()
  for (const name of ['.', ...tree.keys()]) mtimes.set(name, Math.floor((await lstat(path.join(root, top, name))).mtimeMs / 1000))
  const { mode } = await lstat(path.join(root, top))
  return { '.': { mode: mode & 0o7777, mtime: mtimes.get('.') }, ...comparable(tree, mtimes) }
}

async function backUp(format: string, top: string): Promise<{ rowId: string; sha256: string }> {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: top, format })
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  assert.equal((await readRow(svc, row.id)).status, 'success')
  return { rowId: row.id, sha256: job.main.outputs.sha256 ?? '' }
}

describe('restore round trip', () => {
  for (const format of ['zip', 'tar', 'tar.gz', 'tar.zst'] as const) {
    it(`${format}: the restored tree equals the backed-up one`, async () => {
      const backup = await backUp(format, 'data')
      const destination = path.join(scratch, `${format}/restored`)
      const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backup.rowId, path: destination }))
      assert.equal(restore.conclusion, 'success', restore.stdout)

      assert.deepEqual(await snapshot(destination, 'data'), await snapshot(workspace.dir, 'data'))
      const restored = await listTree(destination)
      assert.equal(restored.get('data/sub/link-to-notes')?.target, '../notes.txt')
      assert.equal(restored.get('data/sub/link-to-dir')?.type, 'symlink')
      assert.equal(restore.outputs.sha256, backup.sha256)
      assert.equal(restore.outputs.files, '10')
      assert.equal(restore.outputs.bytes, String(6 + 0 + 2 * MiB + 3 + TEXT.length + 18 + 2 + 5 + 5 + 14 + 5))
      assert.match(restore.summary, /Backup restored/)
      // Nothing but the destination was created beside it.
      assert.deepEqual(await readdir(path.dirname(destination)), ['restored'])
    })
  }

  it(`zip: ${MANY} small files restore, into an empty directory that already exists, found by dispatch id`, async () => {
    const backup = await backUp('zip', 'many')
    const { dispatch_id: dispatchId } = await readRow(svc, backup.rowId)
    const destination = await mkdtemp(path.join(scratch, 'many-'))
    const startedAt = Date.now()
    const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'dispatch-id': dispatchId ?? '', path: destination }))
    assert.equal(restore.conclusion, 'success', restore.stdout)
    assert.ok(Date.now() - startedAt < 30_000, `restoring ${MANY} files took ${Date.now() - startedAt} ms`)
    assert.equal(restore.outputs.files, String(MANY))
    assert.deepEqual(await snapshot(destination, 'many'), await snapshot(workspace.dir, 'many'))
  })

  it('s3-key without Supabase inputs restores the object alone, relative to the workspace', async () => {
    const backup = await backUp('tar.zst', 'data/sub')
    const { s3_key: key } = await readRow(svc, backup.rowId)
    const restoreWorkspace = await mkdtemp(path.join(scratch, 'workspace-'))
    const inputs = restoreInputs(svc, bucket, { 's3-key': key ?? '', path: 'out/here' })
    for (const name of ['supabase-url', 'supabase-key']) delete inputs[name]
    const restore = await restoreHook(svc, inputs, { workspace: restoreWorkspace })
    assert.equal(restore.conclusion, 'success', restore.stdout)
    assert.match(restore.stdout, /without checking a backup row/)
    assert.equal((await listTree(path.join(restoreWorkspace, 'out/here'))).get('data/sub/link-to-notes')?.target, '../notes.txt')
  })
})
