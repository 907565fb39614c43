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
