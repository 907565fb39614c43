import { Worker } from 'node:worker_threads'
import { THREAD_JOBS } from './thread-jobs.js'

/**
 * One worker thread for the work that would stall the main thread: reading small files (three
 * threadpool round trips each through fs) and hashing every byte uploaded. One thread, not one
 * per concern: each costs ~10-15 MiB of memory, and together they use ~1.5 s of CPU per GiB.
 *
 * Started on first use and kept; it holds the process open only while a job is pending, so
 * nobody has to stop it.
 */
class WorkerThread {
  private worker: Worker | undefined
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  private nextId = 0

  /** Runs a job of `kind` (a handler in thread-jobs.ts); shared memory in `payload` is shared, anything else copied. */
  run<T>(kind: string, payload: unknown): Promise<T> {
    const worker = this.start()
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      if (this.waiting.size === 1) worker.ref()
      worker.postMessage({ id, kind, payload })
    })
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(THREAD_JOBS, { eval: true })
    worker.unref()
    worker.on('message', ({ id, value, error }: { id: number; value?: unknown; error?: string }) => {
      const job = this.waiting.get(id)
      this.waiting.delete(id)
      if (this.waiting.size === 0) worker.unref()
      if (error === undefined) job?.resolve(value)
      else job?.reject(new Error(error))
    })
    worker.on('error', error => this.stopped(worker, error))
    worker.on('exit', code => this.stopped(worker, new Error(`the worker thread exited (code ${code})`)))
    this.worker = worker
    return worker
  }

  /** Fails the pending jobs; the next job starts a new thread. */
  private stopped(worker: Worker, error: Error): void {
    if (this.worker !== worker) return
    this.worker = undefined
    for (const { reject } of this.waiting.values()) reject(error)
    this.waiting.clear()
  }
}

export const workerThread = new WorkerThread()
