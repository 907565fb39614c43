/**
 * The retention policy, as restic's `forget` applies it: backups are walked newest first; each
 * rule keeps the newest backup of each of its most recent N buckets (an hour, a UTC day, an ISO
 * week, a month, a year; for keep-last every backup is a bucket of its own); a backup is kept when
 * any rule keeps it, and the newest backup is always kept. A bucket with no backup counts for
 * nothing: keep-daily 7 keeps the last 7 days that have backups, however far back they go.
 *
 * The walk holds one counter and one bucket per rule, so the backups can arrive a page at a time.
 */

export const RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const
export type Rule = (typeof RULES)[number]

/** How many of each rule's buckets to keep; 0 turns a rule off. */
export type Policy = Record<Rule, number>

/** Why a backup is kept: the newest of all, or a rule and the bucket it kept the backup for. */
export type KeepReason = { rule: 'newest' } | { rule: Rule; bucket: string }

const pad = (value: number, width = 2): string => String(value).padStart(width, '0')

/** The ISO 8601 week of a UTC time, `2024-W01`: weeks start on Monday, and week 1 holds the year's first Thursday. */
export function isoWeek(time: Date): string {
  // The week's Thursday decides its year; its day of that year, its number.
  const thursday = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()))
  thursday.setUTCDate(thursday.getUTCDate() + 3 - ((thursday.getUTCDay() + 6) % 7))
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / (7 * 86_400_000))
  return `${thursday.getUTCFullYear()}-W${pad(week)}`
}

/** The bucket a backup falls in for each rule but keep-last, in UTC. */
const BUCKETS: Record<Exclude<Rule, 'last'>, (time: Date) => string> = {
  hourly: time => time.toISOString().slice(0, 13),
  daily: time => time.toISOString().slice(0, 10),
  weekly: isoWeek,
  monthly: time => time.toISOString().slice(0, 7),
  yearly: time => time.toISOString().slice(0, 4)
}

/** The policy's rules in words, for logs and the job summary: `keep-last 3, keep-daily 7`. */
export function describePolicy(policy: Policy): string {
  return RULES.filter(rule => policy[rule] > 0)
    .map(rule => `keep-${rule} ${policy[rule]}`)
    .join(', ')
}

/** `newest`, `keep-last`, `keep-daily 2024-05-01`: one reason in words. */
export function describeReason(reason: KeepReason): string {
  if (reason.rule === 'newest') return 'newest'
  return reason.rule === 'last' ? 'keep-last' : `keep-${reason.rule} ${reason.bucket}`
}

/**
 * One walk of the policy over backups given newest first. `decide` answers why the backup is kept,
 * or an empty list: it falls out of the policy.
 */
export class RetentionWalk {
  private readonly remaining: Record<Rule, number>
  private readonly lastBucket = new Map<Rule, string>()
  private previous: number | undefined
  private seen = 0

  constructor(policy: Policy) {
    this.remaining = { ...policy }
  }

  decide(time: Date): KeepReason[] {
    const at = time.getTime()
    if (Number.isNaN(at)) throw new Error('A backup without a valid time cannot be placed in the policy.')
    // Newest first is what makes "the newest of each bucket" a matter of seeing it first.
    if (this.previous !== undefined && at > this.previous)
      throw new Error('Backups must be walked newest first: one is newer than the one before it.')
    this.previous = at
    const reasons: KeepReason[] = this.seen === 0 ? [{ rule: 'newest' }] : []
    for (const rule of RULES) {
      if (this.remaining[rule] <= 0) continue
      const bucket = rule === 'last' ? String(this.seen) : BUCKETS[rule](time)
      if (this.lastBucket.get(rule) === bucket) continue
      this.lastBucket.set(rule, bucket)
      this.remaining[rule] -= 1
      reasons.push({ rule, bucket })
    }
    this.seen += 1
    return reasons
  }
}
