// A dispatched backup: the row goes in_progress -> success, and the object is the archive of `path`;
// through the table (supabase-key) and through the update-backup function (backup-api-key) alike.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { LEDGER_MODES, actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'
import { listTree } from '../harness/workspace.js'

const { svc, bucket, workspace } = await setUpTestFile('happy', {
  'data/notes.txt': 'hello\n',
  'data/big.bin': { size: 21 * 1024 * 1024 },
  'data/sub/empty': { dir: true },
  'data/sub/link': { symlink: '../notes.txt' },
  'data/.env': 'SECRET=1\n',
  'data/cache/skip.tmp': 'skip\n'
})

for (const mode of LEDGER_MODES) {
  it(`${mode}: marks the row success with the key, the object size and a finish time, and the archive unzips to the input`, async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'data\n!data/cache' }, mode),
      github: { runId: '4242' }
    })
    assert.equal(job.main.exitCode, 0, job.main.stdout)
    assert.equal(job.main.conclusion, 'success')

    const finished = await readRow(svc, row.id)
    assert.equal(finished.status, 'success')
    assert.equal(finished.error_text, null)
    assert.equal(finished.workflow_run_id, '4242')
    assert.ok(finished.finished_at)
    assert.match(
      finished.s3_key ?? '',
      new RegExp(`^backups/\\d{4}/\\d{2}/\\d{2}/backup-\\d{8}T\\d{6}Z-${row.dispatchId.slice(0, 8)}\\.zip$`)
    )

    const head = await svc.s3.headObject(bucket, finished.s3_key ?? '')
    assert.equal(Number(finished.size_bytes), head.ContentLength)
    assert.equal(head.ContentType, 'application/zip')
    assert.deepEqual(await svc.s3.openUploads(bucket), [])

    assert.deepEqual(job.main.outputs, {
      'backup-id': row.id,
      'dispatch-id': row.dispatchId,
      's3-key': finished.s3_key,
      'size-bytes': String(head.ContentLength),
      sha256: job.main.outputs.sha256,
      status: 'success'
    })
    assert.match(job.main.summary, /success/)

    // The object is a zip of exactly the selected files: no dot files, no excluded directory.
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'happy-'))
    try {
      const archive = path.join(scratch, 'backup.zip')
      const body = await svc.s3.getObject(bucket, finished.s3_key ?? '')
      await writeFile(archive, body)
      const { createHash } = await import('node:crypto')
      assert.equal(createHash('sha256').update(body).digest('hex'), job.main.outputs.sha256)
      await promisify(execFile)('unzip', ['-q', archive, '-d', path.join(scratch, 'out')])
      const restored = await listTree(path.join(scratch, 'out'))
      const original = await workspace.listTree()
      assert.deepEqual([...restored.keys()].sort(), [
        'data',
        'data/big.bin',
        'data/notes.txt',
        'data/sub',
        'data/sub/empty',
        'data/sub/link'
      ])
      for (const name of ['data/big.bin', 'data/notes.txt', 'data/sub/link']) {
        assert.equal(restored.get(name)?.sha256, original.get(name)?.sha256, name)
      }
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }

    // post sees that main finalized the row and changes nothing.
    assert.equal(job.post?.exitCode, 0)
    assert.match(job.post?.stdout ?? '', /already finalized/)
    assert.deepEqual(await readRow(svc, row.id), finished)
  })
}
