import { setTimeout as sleep } from 'node:timers/promises'

/** A database request that has not answered in this time is treated as a transient failure. */
export const REQUEST_TIMEOUT_MS = 10_000

export interface RetryPolicy {
  /** Give up once this much time has passed since the first attempt. */
  budgetMs: number
  /** First pause; doubles each attempt up to maxDelayMs. */
  initialDelayMs: number
  maxDelayMs: number
}

/**
 * Runs `attempt` until it succeeds, it throws an error `isTransient` rejects, or the budget is
 * spent; the last error is rethrown. `onRetry` lets callers log each wait.
 */
export async function retry<T>(
  attempt: () => Promise<T>,
  isTransient: (error: unknown) => boolean,
  policy: RetryPolicy,
  onRetry: (error: unknown, delayMs: number) => void = () => {}
): Promise<T> {
  const startedAt = Date.now()
  let delay = policy.initialDelayMs
  for (;;) {
    try {
      return await attempt()
    } catch (error) {
      const remaining = policy.budgetMs - (Date.now() - startedAt)
      if (!isTransient(error) || remaining <= 0) throw error
      const wait = Math.min(delay, remaining, policy.maxDelayMs)
      onRetry(error, wait)
      await sleep(wait)
      delay = Math.min(delay * 2, policy.maxDelayMs)
    }
  }
}
