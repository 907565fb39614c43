// The prune applies the policy to a year of backups: the rows it keeps are exactly the ones the
// policy names (computed here the plain way), the others are marked expired and their objects are
// gone, the newest is kept, and a second prune finds nothing more to do.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { createLedgerTable } from '../harness/backup-job.js'
import { keysUnder, newPrefix, pruneHook, pruneInputs, rowsUnder, storeBackups } from '../harness/prune.js'
import { expectedKept, newestFirst, yearOfBackups } from '../harness/retention.js'
import { services } from '../harness/services.js'

const svc = await services()
after(() => svc.end())
const table = await createLedgerTable(svc, 'backup_history_prune')
const bucket = await svc.newBucket('prune')

it('keeps exactly what keep-last 3, keep-daily 7, keep-weekly 4 and keep-monthly 6 name, and deletes the rest', async () => {
  const prefix = newPrefix('nightly')
  const backups = await storeBackups(svc, bucket, prefix, yearOfBackups(), table)
  assert.ok(backups.length >= 60)
  const policy = { last: 3, daily: 7, weekly: 4, monthly: 6 }
  const expected = expectedKept(backups, policy)
  assert.ok(expected.size > 10 && expected.size < backups.length - 30, `a policy that keeps some and expires most (${expected.size})`)
  const inputs = pruneInputs(svc, bucket, prefix, { table, 'keep-last': '3', 'keep-daily': '7', 'keep-weekly': '4', 'keep-monthly': '6' })

  const prune = await pruneHook(svc, inputs)
  assert.equal(prune.exitCode, 0, prune.stdout)

  const rows = await rowsUnder(svc, prefix, table)
  const kept = new Set(rows.filter(row => row.expired_at === null).map(row => row.id))
  assert.deepEqual([...kept].sort(), [...expected].sort())
  const newest = [...backups].sort(newestFirst)[0]
  assert.ok(newest && kept.has(newest.id), 'the newest backup is kept')

  const stored = await keysUnder(svc, bucket, prefix)
  for (const row of rows) {
    if (kept.has(row.id)) assert.ok(stored.has(row.s3_key ?? ''), `kept row ${row.id} keeps its object`)
    else {
      assert.ok(row.expired_at, `row ${row.id} is marked expired`)
      assert.equal(row.status, 'success', 'an expired row stays success, with its key, for the record')
      assert.ok(!stored.has(row.s3_key ?? ''), `the object of expired row ${row.id} is gone`)
    }
  }
  const expiredIds = rows.filter(row => !kept.has(row.id)).map(row => row.id)
  assert.equal(prune.outputs['kept'], String(expected.size))
  assert.equal(prune.outputs['expired'], String(expiredIds.length))
  assert.deepEqual(JSON.parse(prune.outputs['expired-ids'] ?? '[]').sort(), expiredIds.sort())
  for (const row of rows) assert.match(prune.summary, new RegExp(row.id), 'the summary lists every decision')
  assert.match(prune.summary, /newest, keep-last/)
  assert.match(prune.summary, /keep-monthly 2025-/)

  const again = await pruneHook(svc, inputs)
  assert.equal(again.exitCode, 0, again.stdout)
  assert.equal(again.outputs['expired'], '0')
  assert.equal(again.outputs['kept'], String(expected.size))
  assert.match(again.summary, /expired earlier/)
})

it('keep-last 1 keeps only the newest; another prefix in the same bucket is never touched', async () => {
  const prefix = newPrefix('hourly')
  const other = newPrefix('monthly')
  const times = [0, 1, 2, 3].map(hours => new Date(Date.UTC(2025, 5, 1, 12 - hours)))
  const backups = await storeBackups(svc, bucket, prefix, times, table)
  const others = await storeBackups(svc, bucket, other, times, table)
  const prune = await pruneHook(svc, pruneInputs(svc, bucket, prefix, { table, 'keep-last': '1' }))
  assert.equal(prune.exitCode, 0, prune.stdout)
  const rows = await rowsUnder(svc, prefix, table)
  assert.deepEqual(
    rows.filter(row => row.expired_at === null).map(row => row.id),
    [backups[0]?.id]
  )
  assert.ok((await rowsUnder(svc, other, table)).every(row => row.expired_at === null))
  assert.equal((await keysUnder(svc, bucket, other)).size, others.length)
})
