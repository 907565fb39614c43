// dry-run: the prune reports every decision it would make and changes nothing, in the table or the store.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { createLedgerTable } from '../harness/backup-job.js'
import { keysUnder, newPrefix, pruneHook, pruneInputs, rowsUnder, storeBackups } from '../harness/prune.js'
import { expectedKept } from '../harness/retention.js'
import { services } from '../harness/services.js'

const svc = await services()
after(() => svc.end())
const table = await createLedgerTable(svc, 'backup_history_prune_dry')
const bucket = await svc.newBucket('prune-dry')

it('lists what it would expire and delete, and writes and deletes nothing', async () => {
  const prefix = newPrefix('dry')
  const days = Array.from({ length: 10 }, (_, day) => new Date(Date.UTC(2025, 3, 20 - day, 3)))
  const backups = await storeBackups(svc, bucket, prefix, days, table)
  await svc.rest.resetStats()
  const prune = await pruneHook(svc, pruneInputs(svc, bucket, prefix, { table, 'keep-daily': '4', 'dry-run': 'true' }))
  assert.equal(prune.exitCode, 0, prune.stdout)

  const rows = await rowsUnder(svc, prefix, table)
  assert.ok(rows.every(row => row.expired_at === null))
  assert.equal((await keysUnder(svc, bucket, prefix)).size, backups.length)
  assert.equal((await svc.rest.stats()).byMethod['PATCH'] ?? 0, 0)

  const kept = expectedKept(backups, { daily: 4 })
  const wouldExpire = backups.filter(backup => !kept.has(backup.id)).map(backup => backup.id)
  assert.equal(prune.outputs['kept'], '4')
  assert.equal(prune.outputs['expired'], String(wouldExpire.length))
  assert.deepEqual(JSON.parse(prune.outputs['expired-ids'] ?? '[]').sort(), wouldExpire.sort())
  assert.match(prune.summary, /\(dry run\)/)
  for (const id of wouldExpire) assert.match(prune.summary, new RegExp(`${id}.*would be marked expired and its object deleted`))
})
