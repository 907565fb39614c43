import os from 'node:os'

/**
 * How the archive uses every core: compression runs on libuv's threadpool through zlib's async
 * API (no worker isolates to start or feed), in independent jobs of at most one block, and
 * `inOrder` keeps a bounded number of jobs in flight while handing results back in order. Memory
 * is therefore a few blocks per core, whatever the size of the tree.
 */
export const CORES = os.availableParallelism()

/** Compression jobs in flight: one per core, plus one ready so a core never waits for the main thread. */
export const COMPRESSION_JOBS = CORES + 1

/**
 * The threadpool has 4 threads by default: size it for the compression jobs, plus one for the
 * rest (DNS lookups, the SDK's file reads); files are read on the worker thread (thread.ts).
 * libuv reads UV_THREADPOOL_SIZE once, when the pool is first used, so this must run before any
 * zlib work (the first statement of main). A value the user set is kept.
 */
export function sizeThreadpool(): void {
  process.env.UV_THREADPOOL_SIZE ??= String(COMPRESSION_JOBS + 1)
}

/**
 * Starts jobs while fewer than `limit` are pending and yields their results in the order the jobs
 * came. Jobs are functions (an async generator cannot hand over a promise without awaiting it).
 * A failure is raised when its turn comes; jobs still pending then settle with their rejections
 * marked handled.
 */
export async function* inOrder<T>(jobs: AsyncIterable<() => Promise<T>> | Iterable<() => Promise<T>>, limit: number): AsyncGenerator<T> {
  const pending: Promise<T>[] = []
  for await (const start of jobs) {
    const job = start()
    job.catch(() => {})
    pending.push(job)
    if (pending.length >= limit) yield await (pending.shift() as Promise<T>)
  }
  while (pending.length > 0) yield await (pending.shift() as Promise<T>)
}
