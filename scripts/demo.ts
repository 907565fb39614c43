// The action end to end on the local services, as the runner would run it: one dispatched backup
// that succeeds, then one cancelled mid-upload, then the restore of the first, compared with the
// workspace. Prints the row before and after each run.
// Run it with `npm run demo` (which installs and starts everything it needs).
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { insertRow, readRow, actionInputs, restoreHook, restoreInputs, ACTION_DIR, PHASE } from '../__tests__/harness/backup-job.js'
import { runJob } from '../__tests__/harness/runner.js'
import { services, type Services } from '../__tests__/harness/services.js'
import { listTree, makeWorkspace, type TreeEntry } from '../__tests__/harness/workspace.js'

const MiB = 1024 * 1024

async function showRow(svc: Services, id: string, when: string): Promise<void> {
  const row = await readRow(svc, id)
  console.log(`\n  row ${when}:`)
  for (const column of ['status', 'dispatch_id', 's3_key', 'size_bytes', 'workflow_run_id', 'error_text', 'finished_at'] as const) {
    const value: unknown = row[column]
    console.log(`    ${column.padEnd(16)} ${value === null ? 'null' : value instanceof Date ? value.toISOString() : String(value)}`)
  }
}

/** Paths whose type, content, link target or mode differ between the backed-up part of `before` and `after`. */
function diffTrees(before: Map<string, TreeEntry>, after: Map<string, TreeEntry>, backedUp: (name: string) => boolean): string[] {
  const names = new Set([...[...before.keys()].filter(backedUp), ...after.keys()])
  const differences: string[] = []
  for (const name of [...names].sort()) {
    const [a, b] = [before.get(name), after.get(name)]
    if (!a || !b) differences.push(`${name} only in ${a ? 'the workspace' : 'the restore'}`)
    else if (a.type !== b.type || a.sha256 !== b.sha256 || (a.type !== 'symlink' && a.mode !== b.mode)) differences.push(`${name} differs`)
  }
  return differences
}

async function main(): Promise<void> {
  const svc = await services()
  const bucket = await svc.newBucket('demo')
  const workspace = await makeWorkspace({
    prefix: 'demo-workspace-',
    files: {
      'app/config.json': '{"name": "demo"}\n',
      'app/uploads/photo.bin': { size: 24 * MiB },
      'app/uploads/notes.txt': 'Backed up by supabase-s3-backup.\n',
      'app/bin/start.sh': { content: '#!/bin/sh\necho started\n', mode: 0o755 },
      'app/latest-notes': { symlink: 'uploads/notes.txt' },
      'app/empty-dir': { dir: true },
      'app/cache/skip-me.tmp': 'excluded by the ! line\n',
      'app/.env': 'SECRET=never-archived\n'
    }
  })
  try {
    console.log(`Workspace ${workspace.dir}, bucket s3://${bucket} at ${svc.env.S3_ENDPOINT}`)

    console.log('\n1. A dispatched backup')
    const first = await insertRow(svc, { dispatch_id: randomUUID() })
    await showRow(svc, first.id, 'inserted by the app')
    const ok = await runJob({
      actionDir: ACTION_DIR,
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': first.dispatchId, path: 'app\n!app/cache' }),
      onLine: (line, _stream, hook) => {
        if (!line.startsWith('::add-mask::') && !line.startsWith('::debug::')) console.log(`    [${hook}] ${line}`)
      }
    })
    console.log(`  main: ${ok.main.conclusion}, post: ${ok.post?.conclusion}, outputs: ${JSON.stringify(ok.main.outputs)}`)
    await showRow(svc, first.id, 'after the run')

    console.log('\n2. A backup cancelled mid-upload (the store is slowed to 4 MiB/s; SIGINT after 8 MiB)')
    const second = await insertRow(svc, { dispatch_id: randomUUID() })
    await showRow(svc, second.id, 'inserted by the app')
    await svc.s3.faults({ mode: 'slow', op: 'UploadPart', bytesPerSec: 4 * MiB })
    await svc.s3.resetStats()
    const cancelled = await runJob({
      actionDir: ACTION_DIR,
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': second.dispatchId, path: 'app\n!app/cache' }),
      cancelAt: async step => {
        await step.waitForState(PHASE, 'uploading')
        await svc.s3.waitForPartBytes(8 * MiB)
      },
      onLine: (line, _stream, hook) => {
        if (!line.startsWith('::add-mask::') && !line.startsWith('::debug::')) console.log(`    [${hook}] ${line}`)
      }
    })
    await svc.clearFaults()
    console.log(
      `  main: ${cancelled.main.conclusion} (signals ${cancelled.main.signalsSent.map(s => s.signal).join(', ')}), post: ${cancelled.post?.conclusion}`
    )
    await showRow(svc, second.id, 'after the cancelled run')
    const open = await svc.s3.openUploads(bucket)
    console.log(`\n  open multipart uploads left in the bucket: ${open.length}`)
    console.log(`  objects in the bucket: ${(await svc.s3.objects(bucket)).map(o => `${o.key} (${o.size} bytes)`).join(', ')}`)
    const firstRow = await readRow(svc, first.id)
    const secondRow = await readRow(svc, second.id)
    if (firstRow.status !== 'success' || secondRow.status !== 'failed' || open.length !== 0) {
      throw new Error('the demo did not end as expected')
    }
    console.log('\n3. Restoring the first backup with the restore sub-action, then comparing it with the workspace')
    const restoreDir = await mkdtemp(path.join(os.tmpdir(), 'demo-restore-'))
    try {
      const destination = path.join(restoreDir, 'restored')
      const restored = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': first.id, path: destination }), {
        onLine: line => {
          if (!line.startsWith('::add-mask::') && !line.startsWith('::debug::')) console.log(`    [restore] ${line}`)
        }
      })
      console.log(`  restore: ${restored.conclusion}, outputs: ${JSON.stringify(restored.outputs)}`)
      const differences = diffTrees(
        await workspace.listTree(),
        await listTree(destination),
        name => name.startsWith('app') && !name.startsWith('app/cache') && name !== 'app/.env'
      )
      console.log(
        `  restored tree against the backed-up files (paths, contents, modes, links): ${differences.length === 0 ? 'no differences' : differences.join('; ')}`
      )
      if (restored.conclusion !== 'success' || differences.length > 0) throw new Error('the restore did not give back the backed-up tree')
    } finally {
      await rm(restoreDir, { recursive: true, force: true })
    }
    console.log('\nDemo finished: in_progress -> success, then in_progress -> failed (cancelled), then restored with no differences.')
  } finally {
    await workspace.cleanup()
    await svc.end()
  }
}

main().catch(error => {
  console.error(error)
  process.exitCode = 1
})
