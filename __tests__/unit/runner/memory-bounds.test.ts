// How the backup relaunches itself with memory bounds (src/memory-bounds.ts), for each process it may start as.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { HEAP_CEILING, boundedLaunch, ceilingAfterCollection } from '../../../src/runner/memory-bounds.js'

const started = { argv: ['/opt/node24/bin/node', '/a/dist/main/index.js'], execArgv: [], env: { PATH: '/bin' }, platform: 'linux' as const }

it('adds the semi-space and gc flags before the script, keeping the flags node was started with', () => {
  const launch = boundedLaunch({ ...started, execArgv: ['--enable-source-maps'] })
  assert.deepEqual(launch?.args, [
    '/opt/node24/bin/node',
    '--enable-source-maps',
    '--max-semi-space-size=1',
    '--expose-gc',
    '/a/dist/main/index.js'
  ])
})

it('keeps the environment, limits malloc arenas unless the user did, and marks the relaunch', () => {
  assert.deepEqual(boundedLaunch(started)?.env, { PATH: '/bin', MALLOC_ARENA_MAX: '2', SUPABASE_S3_BACKUP_RELAUNCHED: '1' })
  assert.equal(boundedLaunch({ ...started, env: { MALLOC_ARENA_MAX: '8' } })?.env.MALLOC_ARENA_MAX, '8')
})

it('does not relaunch a relaunched process, nor on Windows (no execve)', () => {
  assert.equal(boundedLaunch({ ...started, env: { SUPABASE_S3_BACKUP_RELAUNCHED: '1' } }), undefined)
  assert.equal(boundedLaunch({ ...started, platform: 'win32' }), undefined)
})

it('keeps the heap ceiling after a collection, unless what is live needs more room', () => {
  assert.equal(ceilingAfterCollection(12 * 1024 * 1024), HEAP_CEILING)
  assert.equal(ceilingAfterCollection(100 * 1024 * 1024), 150 * 1024 * 1024)
})
