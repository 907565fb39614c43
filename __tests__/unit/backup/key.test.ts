// Object keys: the contract's template, and the default's collision-proof suffix.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { DEFAULT_KEY_TEMPLATE, renderKey, utcTimestamp } from '../../../src/backup/key.js'

const context = {
  now: new Date('2026-03-04T05:06:07.890Z'),
  dispatchId: 'abcdef12-3456-7890-abcd-ef1234567890',
  runId: '99',
  runAttempt: '2',
  repository: 'acme/app',
  extension: 'tar.gz'
}

it('formats {timestamp} as UTC YYYYMMDDTHHMMSSZ', () => {
  assert.equal(utcTimestamp(context.now), '20260304T050607Z')
})

it('adds the first 8 hex digits of the dispatch id to the default template', () => {
  assert.equal(renderKey(DEFAULT_KEY_TEMPLATE, context), 'backups/2026/03/04/backup-20260304T050607Z-abcdef12.tar.gz')
})

it('renders every placeholder of a custom template and adds nothing', () => {
  assert.equal(
    renderKey('{repo}/{yyyy}-{mm}-{dd}/{run_id}.{run_attempt}/{dispatch_id}.{ext}', context),
    'acme/app/2026-03-04/99.2/abcdef12-3456-7890-abcd-ef1234567890.tar.gz'
  )
})

it('gives parallel dispatches in the same second different default keys', () => {
  const other = { ...context, dispatchId: '00000000-3456-7890-abcd-ef1234567890' }
  assert.notEqual(renderKey(DEFAULT_KEY_TEMPLATE, context), renderKey(DEFAULT_KEY_TEMPLATE, other))
})
