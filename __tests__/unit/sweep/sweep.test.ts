// The sweep's inputs and its duration arithmetic.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InputError } from '../../../src/errors.js'
import { parseDuration } from '../../../src/runner/inputs.js'
import { parseSweepInputs, type InputName } from '../../../src/sweep/inputs.js'
import { formatDuration } from '../../../src/sweep/sweep.js'

const reader = (values: Partial<Record<InputName, string>>) => (name: InputName) => values[name] ?? ''
const OK: Partial<Record<InputName, string>> = { 'supabase-url': 'https://abcd.supabase.co', 'supabase-key': 'k' }

describe('max-age', () => {
  for (const [text, ms] of [
    ['90m', 90 * 60_000],
    ['6h', 6 * 3_600_000],
    ['2d', 2 * 86_400_000],
    ['1h30m', 90 * 60_000],
    ['45S', 45_000]
  ] as const) {
    it(`reads ${text}`, () => assert.equal(parseDuration(text), ms))
  }
  for (const text of ['', '6', 'h', '6 h', '-1h', '0m', '1.5h', 'six hours']) {
    it(`refuses '${text}'`, () => assert.equal(parseDuration(text), undefined))
  }
})

describe('sweep inputs', () => {
  it('defaults: 6h, not a dry run, the current repository', () => {
    const inputs = parseSweepInputs(reader(OK), { GITHUB_REPOSITORY: 'me/app' })
    assert.equal(inputs.maxAgeMs, 6 * 3_600_000)
    assert.equal(inputs.dryRun, false)
    assert.deepEqual(inputs.repository, { owner: 'me', repo: 'app' })
    assert.equal(inputs.table, 'backup_history')
  })

  it('names every bad input', () => {
    try {
      parseSweepInputs(reader({ 'max-age': 'soon', 'dry-run': 'y', repository: 'no-slash' }), {})
      assert.fail('expected an InputError')
    } catch (error) {
      assert.ok(error instanceof InputError)
      assert.deepEqual(error.problems.map(p => p.input).sort(), ['dry-run', 'max-age', 'repository', 'supabase-key', 'supabase-url'])
    }
  })
})

describe('sweep scope and access', () => {
  const DISPATCH = '123e4567-e89b-12d3-a456-426614174000'

  it('without dispatch-id it judges every in_progress row', () => {
    assert.deepEqual(parseSweepInputs(reader(OK), { GITHUB_REPOSITORY: 'me/app' }).scope, { kind: 'all' })
  })

  it('with dispatch-id and backup-job-result it is the finalizer of that one row', () => {
    const inputs = parseSweepInputs(reader({ ...OK, 'dispatch-id': DISPATCH.toUpperCase(), 'backup-job-result': 'failure' }), {
      GITHUB_REPOSITORY: 'me/app'
    })
    assert.deepEqual(inputs.scope, { kind: 'dispatch', dispatchId: DISPATCH, backupJobResult: 'failure' })
  })

  for (const [title, values, input] of [
    ['dispatch-id without backup-job-result', { 'dispatch-id': DISPATCH }, 'backup-job-result'],
    ['backup-job-result without dispatch-id', { 'backup-job-result': 'cancelled' }, 'dispatch-id'],
    ['a result GitHub never gives', { 'dispatch-id': DISPATCH, 'backup-job-result': 'neutral' }, 'backup-job-result'],
    ['a dispatch-id that is not a UUID', { 'dispatch-id': 'run-1', 'backup-job-result': 'failure' }, 'dispatch-id']
  ] as const) {
    it(`refuses ${title}, naming ${input}`, () => {
      assert.throws(
        () => parseSweepInputs(reader({ ...OK, ...values }), { GITHUB_REPOSITORY: 'me/app' }),
        (error: unknown) => error instanceof InputError && error.problems.map(p => p.input).join() === input
      )
    })
  }

  it('reaches the rows through the update-backup function with backup-api-key alone', () => {
    const inputs = parseSweepInputs(reader({ 'supabase-url': 'https://abcd.supabase.co', 'backup-api-key': 'x'.repeat(40) }), {
      GITHUB_REPOSITORY: 'me/app'
    })
    assert.deepEqual(inputs.access, { kind: 'function', apiKey: 'x'.repeat(40), functionName: 'update-backup' })
  })

  it('refuses both keys at once, as the backup does', () => {
    assert.throws(
      () => parseSweepInputs(reader({ ...OK, 'backup-api-key': 'x'.repeat(40) }), { GITHUB_REPOSITORY: 'me/app' }),
      /Input 'supabase-key': must be empty when 'backup-api-key' is set/
    )
  })
})

describe('ages in messages', () => {
  for (const [ms, text] of [
    [0, '0s'],
    [12_400, '12s'],
    [312_000, '5m 12s'],
    [7 * 3_600_000 + 5_000, '7h 0m'],
    [90 * 60_000, '1h 30m'],
    [2 * 86_400_000 + 3 * 3_600_000, '2d 3h']
  ] as const) {
    it(`${ms} ms is ${text}`, () => assert.equal(formatDuration(ms), text))
  }
})
