// A failure half-way through a prune leaves every row and its object consistent: the row is marked
// expired before its object is deleted, so no row points at a missing object without saying so.
// The prune stops at the failure and fails the step; the next prune finishes the work.
import assert from 'node:assert/strict'
import { after, afterEach, it } from 'node:test'
import type { BackupRow } from '../../src/ledger/ledger.js'
import { createLedgerTable, errorsOf } from '../harness/backup-job.js'
import { keysUnder, newPrefix, pruneHook, pruneInputs, rowsUnder, storeBackups } from '../harness/prune.js'
import { services } from '../harness/services.js'

const svc = await services()
afterEach(() => svc.clearFaults())
after(() => svc.end())
const table = await createLedgerTable(svc, 'backup_history_prune_faults')
const bucket = await svc.newBucket('prune-faults')

/** Twenty backups an hour apart: keep-last 5 expires fifteen. */
const twentyHours = Array.from({ length: 20 }, (_, hour) => new Date(Date.UTC(2025, 2, 10, 20 - hour)))

/** Fails the test if a row points at a missing object without saying so. */
function assertNoSilentlyMissingObject(rows: BackupRow[], stored: Set<string>): void {
  for (const row of rows) {
    if (!stored.has(row.s3_key ?? '')) assert.ok(row.expired_at, `row ${row.id} points at a missing object and is not marked expired`)
  }
}

it('the store refuses deletes half-way: marked rows whose object stayed are retried by the next prune', async () => {
  const prefix = newPrefix('store-fault')
  await storeBackups(svc, bucket, prefix, twentyHours, table)
  const inputs = pruneInputs(svc, bucket, prefix, { table, 'keep-last': '5' })
  await svc.s3.faults({ mode: 'status', status: 403, op: 'DeleteObject', skip: 4 })

  const failed = await pruneHook(svc, inputs)
  assert.equal(failed.exitCode, 1)
  assert.match(errorsOf(failed), /access denied \(HTTP 403\)\. The prune's credentials need s3:DeleteObject/)
  const rows = await rowsUnder(svc, prefix, table)
  const stored = await keysUnder(svc, bucket, prefix)
  assertNoSilentlyMissingObject(rows, stored)
  const marked = rows.filter(row => row.expired_at)
  assert.equal(marked.length, 5, 'four deleted, and the fifth marked before its delete was refused; then the prune stopped')
  assert.equal(stored.size, 16)
  assert.equal(failed.outputs['expired'], '5')
  assert.match(failed.summary, /object NOT deleted \(the next prune retries\)/)
  assert.match(failed.summary, /not done: the prune stopped at an earlier failure/)

  await svc.clearFaults()
  const retried = await pruneHook(svc, inputs)
  assert.equal(retried.exitCode, 0, retried.stdout)
  assert.match(retried.summary, /its object was still there; object deleted/)
  const after = await rowsUnder(svc, prefix, table)
  assert.equal(after.filter(row => row.expired_at).length, 15)
  assert.deepEqual(
    [...(await keysUnder(svc, bucket, prefix))].sort(),
    after
      .filter(row => !row.expired_at)
      .map(row => row.s3_key)
      .sort()
  )
})

it('the database refuses the mark half-way: no object whose row was not marked is deleted', async () => {
  const prefix = newPrefix('ledger-fault')
  await storeBackups(svc, bucket, prefix, twentyHours, table)
  await svc.rest.faults({ mode: 'status', status: 403, methods: ['PATCH'], skip: 3 })

  const failed = await pruneHook(svc, pruneInputs(svc, bucket, prefix, { table, 'keep-last': '5' }))
  assert.equal(failed.exitCode, 1)
  const rows = await rowsUnder(svc, prefix, table)
  const stored = await keysUnder(svc, bucket, prefix)
  assertNoSilentlyMissingObject(rows, stored)
  assert.equal(rows.filter(row => row.expired_at).length, 3)
  assert.equal(stored.size, 17, 'only the three marked rows lost their objects')
  assert.match(failed.summary, /not marked, object kept/)
})
