import * as core from '@actions/core'
import v8 from 'node:v8'

/**
 * The runner starts `node dist/main/index.js` with V8's and glibc's defaults, which are made for
 * servers: V8 lets its young generation grow to 32, then 64 MiB over a long run, and glibc gives
 * each thread that allocates (the compression threads) a heap of its own that it rarely trims.
 * Together that was 20-50 MiB of a 1 GiB backup's peak of ~200, and most of what grew with the
 * size of the tree (bench/results.md).
 *
 * An action cannot pass flags to node (NODE_OPTIONS is the user's), so the process replaces itself
 * at start (execve: the same pid, so the runner's signals still reach it) with one started with
 * small semi-spaces and at most two malloc arenas. Nothing has run yet, so nothing is lost.
 *
 * With semi-spaces that small, what lives a few milliseconds (the upload's request objects for
 * each part) is promoted to the old generation, which V8 first collects when the heap reaches
 * ~34 MiB, a limit it sizes from the machine's memory. A 1 GiB backup ended before that; a 4 GiB
 * one got there, 10-20 MiB over the 1 GiB peak. So the relaunched process also collects when the
 * heap passes a ceiling (HEAP_CEILING): once in a 4 GiB tar, never in a 1 GiB tar.zst.
 */

/** Marks the relaunched process, so that it does not relaunch again. */
const RELAUNCHED = 'SUPABASE_S3_BACKUP_RELAUNCHED'
/** 1 MiB semi-spaces: scavenges stay cheap, and the young generation stays under 3 MiB. */
const SEMI_SPACE_FLAG = '--max-semi-space-size=1'
/** glibc's own tunable; a value the user set is kept. Ignored by other C libraries. */
const MALLOC_ARENAS = { MALLOC_ARENA_MAX: '2' }
/** For collectAboveCeiling: the action has no other use for it. */
const GC_FLAG = '--expose-gc'
/** Where a 1 GiB backup's heap ends: bundle, SDK, listing and what is in flight, with some garbage. */
export const HEAP_CEILING = 24 * 1024 * 1024
const HEAP_CHECK_MS = 1000

export interface Launch {
  /** process.argv: node, the script, its arguments. */
  argv: readonly string[]
  execArgv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  platform: NodeJS.Platform
}

/** How to start this process again with the bounds; undefined once it runs with them, or where execve does not exist. */
export function boundedLaunch(current: Launch): { args: string[]; env: Record<string, string | undefined> } | undefined {
  const [node, ...script] = current.argv
  if (current.platform === 'win32' || current.env[RELAUNCHED] || node === undefined) return undefined
  return {
    args: [node, ...current.execArgv, SEMI_SPACE_FLAG, GC_FLAG, ...script],
    env: { ...MALLOC_ARENAS, ...current.env, [RELAUNCHED]: '1' }
  }
}

/** Replaces this process with one that runs within the bounds; returns if it already does, or cannot. */
export function relaunchWithMemoryBounds(): void {
  if (process.env[RELAUNCHED]) {
    core.debug(
      `Running with ${SEMI_SPACE_FLAG}, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX} and a heap ceiling of ${HEAP_CEILING / 1024 / 1024} MiB (relaunched at start).`
    )
    collectAboveCeiling()
    return
  }
  const launch = boundedLaunch(process)
  if (!launch || typeof process.execve !== 'function') return
  try {
    process.execve(process.execPath, launch.args, launch.env)
  } catch (error) {
    // Only costs memory: go on as started.
    core.debug(`Could not relaunch with memory bounds: ${String(error)}`)
  }
}

/** Checks the heap every second and runs a full collection when it is over the ceiling. */
function collectAboveCeiling(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (typeof gc !== 'function') return
  let ceiling = HEAP_CEILING
  setInterval(() => {
    if (v8.getHeapStatistics().used_heap_size <= ceiling) return
    gc()
    ceiling = ceilingAfterCollection(v8.getHeapStatistics().used_heap_size)
  }, HEAP_CHECK_MS).unref()
}

/** A heap still large after a collection (a huge listing) raises the ceiling: not a collection every second for nothing. */
export function ceilingAfterCollection(liveBytes: number): number {
  return Math.max(HEAP_CEILING, Math.ceil(1.5 * liveBytes))
}
