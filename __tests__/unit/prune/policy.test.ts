// The retention walk, restic's forget in miniature: the newest of each bucket, the newest N
// buckets that have backups, the newest backup always, and backups walked newest first.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describePolicy, describeReason, isoWeek, RetentionWalk, type Policy } from '../../../src/prune/policy.js'

const NONE: Policy = { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }
const at = (iso: string) => new Date(iso)

/** Which of the times (given newest first) the policy keeps, and why, in words. */
function walk(policy: Partial<Policy>, times: string[]): string[] {
  const retention = new RetentionWalk({ ...NONE, ...policy })
  return times.map(time => retention.decide(at(time)).map(describeReason).join(', '))
}

describe('RetentionWalk', () => {
  it('keeps the newest backup whatever the policy, even with every rule at 0', () => {
    assert.deepEqual(walk({}, ['2025-03-01T00:00:00Z', '2025-02-01T00:00:00Z']), ['newest', ''])
  })

  it('keep-last 0 is off; keep-last N keeps the newest N', () => {
    assert.deepEqual(walk({ last: 0, daily: 1 }, ['2025-03-02T10:00:00Z', '2025-03-01T10:00:00Z']), ['newest, keep-daily 2025-03-02', ''])
    assert.deepEqual(walk({ last: 2 }, ['2025-03-03T00:00:00Z', '2025-03-02T00:00:00Z', '2025-03-01T00:00:00Z']), [
      'newest, keep-last',
      'keep-last',
      ''
    ])
  })

  it('of several backups in one day, the newest is kept for that day, ties included', () => {
    const sameInstant = '2025-03-02T10:00:00Z'
    assert.deepEqual(
      walk({ daily: 2 }, [sameInstant, sameInstant, '2025-03-02T01:00:00Z', '2025-03-01T23:59:59Z', '2025-03-01T00:00:00Z']),
      ['newest, keep-daily 2025-03-02', '', '', 'keep-daily 2025-03-01', '']
    )
  })

  it('days without backups count for nothing: keep-daily 2 reaches back past an empty week', () => {
    assert.deepEqual(walk({ daily: 2 }, ['2025-03-20T00:00:00Z', '2025-03-10T00:00:00Z', '2025-03-09T00:00:00Z']), [
      'newest, keep-daily 2025-03-20',
      'keep-daily 2025-03-10',
      ''
    ])
  })

  it('weeks are ISO weeks (Monday to Sunday, in UTC), months and years calendar ones', () => {
    // Sunday 2025-03-09 and Monday 2025-03-10 are in different ISO weeks.
    assert.deepEqual(
      walk({ weekly: 3 }, ['2025-03-10T00:00:00Z', '2025-03-09T23:00:00Z', '2025-03-03T00:00:00Z', '2025-03-02T00:00:00Z']),
      ['newest, keep-weekly 2025-W11', 'keep-weekly 2025-W10', '', 'keep-weekly 2025-W09']
    )
    assert.deepEqual(
      walk({ monthly: 1, yearly: 2 }, ['2025-01-05T00:00:00Z', '2024-12-31T23:00:00Z', '2024-06-01T00:00:00Z', '2023-01-01T00:00:00Z']),
      ['newest, keep-monthly 2025-01, keep-yearly 2025', 'keep-yearly 2024', '', '']
    )
  })

  it('a backup kept by several rules names each', () => {
    assert.deepEqual(walk({ last: 1, hourly: 1, daily: 1 }, ['2025-03-01T05:30:00Z']), [
      'newest, keep-last, keep-hourly 2025-03-01T05, keep-daily 2025-03-01'
    ])
  })

  it('refuses backups that are not walked newest first', () => {
    const retention = new RetentionWalk({ ...NONE, last: 3 })
    retention.decide(at('2025-03-01T00:00:00Z'))
    assert.throws(() => retention.decide(at('2025-03-02T00:00:00Z')), /newest first/)
  })
})

describe('isoWeek', () => {
  it('gives the days around new year to the year of their Thursday', () => {
    assert.equal(isoWeek(at('2020-12-31T12:00:00Z')), '2020-W53')
    assert.equal(isoWeek(at('2021-01-03T12:00:00Z')), '2020-W53')
    assert.equal(isoWeek(at('2021-01-04T00:00:00Z')), '2021-W01')
    assert.equal(isoWeek(at('2024-12-30T00:00:00Z')), '2025-W01')
  })
})

it('describePolicy names the rules that are on', () => {
  assert.equal(describePolicy({ ...NONE, last: 3, monthly: 6 }), 'keep-last 3, keep-monthly 6')
})
