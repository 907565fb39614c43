// The backup bounds its own memory: the process the runner started relaunches itself at start (same pid,
// so the runner's signals still reach it) with 1 MiB V8 semi-spaces, at most two malloc arenas, and gc exposed
// for its heap ceiling. What that saves is measured by `npm run bench`, not here.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { it } from 'node:test'
import { ACTION_DIR, PHASE, actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('bounds', { 'data/notes.txt': 'hello\n' })

async function processSeenAtCompletion(env: Record<string, string> = {}): Promise<{ argv: string[]; env: string[]; status: string }> {
  const row = await insertRow(svc)
  // Holds the process at the end of the upload, long enough to read what it runs with.
  await svc.s3.faults({ mode: 'slow', op: 'CompleteMultipartUpload', delayMs: 1_000, count: 1 })
  let seen: { argv: string[]; env: string[] } | undefined
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId }),
    env,
    // Only looks: the trigger never resolves, so nothing is cancelled.
    cancelAt: async step => {
      await step.waitForState(PHASE, 'completing')
      const [argv, environ] = await Promise.all([
        readFile(`/proc/${step.pid}/cmdline`, 'utf8'),
        readFile(`/proc/${step.pid}/environ`, 'utf8')
      ])
      seen = { argv: argv.split('\0').filter(Boolean), env: environ.split('\0') }
      return new Promise(() => {})
    }
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  assert.ok(seen, 'the process was not seen while completing')
  return { ...seen, status: (await readRow(svc, row.id)).status }
}

it('runs the backup in the process the runner started, relaunched with small semi-spaces, gc exposed and two malloc arenas', async () => {
  const seen = await processSeenAtCompletion()
  assert.equal(seen.status, 'success')
  // The runner started `node dist/main/index.js`: the same pid now runs it with the flag.
  assert.deepEqual(seen.argv.slice(1), ['--max-semi-space-size=1', '--expose-gc', path.join(ACTION_DIR, 'dist/main/index.js')])
  assert.ok(seen.env.includes('MALLOC_ARENA_MAX=2'))
})

it('keeps the malloc arena limit a user set', async () => {
  const seen = await processSeenAtCompletion({ MALLOC_ARENA_MAX: '4' })
  assert.ok(seen.env.includes('MALLOC_ARENA_MAX=4'))
  assert.ok(!seen.env.includes('MALLOC_ARENA_MAX=2'))
})
