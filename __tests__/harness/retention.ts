// The set a policy keeps, computed the plain way, independently of src/prune/policy.ts: group the
// backups by each rule's bucket, take the newest of each bucket, keep the newest N buckets.
import type { StoredBackup } from './prune.js'

export interface TestPolicy {
  last?: number
  hourly?: number
  daily?: number
  weekly?: number
  monthly?: number
  yearly?: number
}

const DAY_MS = 86_400_000

/** The Monday (UTC) that starts the ISO week of a time: two times share an ISO week exactly when they share it. */
function mondayOf(time: Date): string {
  const midnight = Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate())
  const daysSinceMonday = (new Date(midnight).getUTCDay() + 6) % 7
  return new Date(midnight - daysSinceMonday * DAY_MS).toISOString().slice(0, 10)
}

const BUCKET_OF: Record<Exclude<keyof TestPolicy, 'last'>, (time: Date) => string> = {
  hourly: time => `${time.getUTCFullYear()}-${time.getUTCMonth()}-${time.getUTCDate()}-${time.getUTCHours()}`,
  daily: time => `${time.getUTCFullYear()}-${time.getUTCMonth()}-${time.getUTCDate()}`,
  weekly: mondayOf,
  monthly: time => `${time.getUTCFullYear()}-${time.getUTCMonth()}`,
  yearly: time => String(time.getUTCFullYear())
}

/** Newest first: later finish first, then the larger id (the order the prune walks in). */
export function newestFirst(a: StoredBackup, b: StoredBackup): number {
  return b.finishedAt.getTime() - a.finishedAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
}

/** The ids the policy keeps, with the newest backup always among them. */
export function expectedKept(backups: readonly StoredBackup[], policy: TestPolicy): Set<string> {
  const sorted = [...backups].sort(newestFirst)
  const kept = new Set<string>(sorted.slice(0, Math.max(1, policy.last ?? 0)).map(backup => backup.id))
  for (const rule of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const count = policy[rule] ?? 0
    if (count === 0) continue
    const newestOfBucket = new Map<string, StoredBackup>()
    for (const backup of sorted) {
      const bucket = BUCKET_OF[rule](backup.finishedAt)
      if (!newestOfBucket.has(bucket)) newestOfBucket.set(bucket, backup)
    }
    // Map keeps insertion order: buckets from the newest backup's down.
    for (const backup of [...newestOfBucket.values()].slice(0, count)) kept.add(backup.id)
  }
  return kept
}

/** About 60 finish times over 2025: a cluster of recent days (some with two backups, one pair in the same second), then sparser. */
export function yearOfBackups(): Date[] {
  let seed = 20250101
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  const end = Date.UTC(2025, 11, 31, 23, 0, 0)
  const times: Date[] = []
  for (let day = 0; day < 12; day++) {
    const base = end - day * DAY_MS - Math.floor(random() * 20) * 3_600_000
    times.push(new Date(base))
    if (day % 3 === 0) times.push(new Date(base - Math.floor(random() * 3) * 3_600_000 - 60_000))
  }
  times.push(new Date(times[0]?.getTime() ?? end)) // two backups finished in the same instant
  while (times.length < 60) times.push(new Date(end - 12 * DAY_MS - Math.floor(random() * 340 * DAY_MS)))
  return times
}
