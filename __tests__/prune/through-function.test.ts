// The prune with backup-api-key alone: it lists the prefix's success rows (list_success) and marks
// them (expire) through the update-backup function, so the workflow holds no key with table rights.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { keysUnder, newPrefix, pruneHook, pruneInputs, rowsUnder, storeBackups } from '../harness/prune.js'
import { expectedKept } from '../harness/retention.js'
import { services } from '../harness/services.js'

const svc = await services()
after(() => svc.end())
const bucket = await svc.newBucket('prune-function')

it('keeps what keep-weekly 2 and keep-monthly 3 name, through the function, and leaves other prefixes alone', async () => {
  const prefix = newPrefix('weekly')
  const other = newPrefix('other')
  const days = Array.from({ length: 30 }, (_, index) => new Date(Date.UTC(2025, 8, 30) - index * 4 * 86_400_000))
  const backups = await storeBackups(svc, bucket, prefix, days)
  await storeBackups(svc, bucket, other, days)

  const prune = await pruneHook(svc, pruneInputs(svc, bucket, prefix, { 'keep-weekly': '2', 'keep-monthly': '3' }, 'function'))
  assert.equal(prune.exitCode, 0, prune.stdout)

  const expected = expectedKept(backups, { weekly: 2, monthly: 3 })
  const rows = await rowsUnder(svc, prefix)
  assert.deepEqual(
    rows
      .filter(row => row.expired_at === null)
      .map(row => row.id)
      .sort(),
    [...expected].sort()
  )
  const stored = await keysUnder(svc, bucket, prefix)
  for (const row of rows) assert.equal(stored.has(row.s3_key ?? ''), row.expired_at === null, `row ${row.id} and its object agree`)
  assert.ok((await rowsUnder(svc, other)).every(row => row.expired_at === null))
  assert.equal((await keysUnder(svc, bucket, other)).size, days.length)
})

it('with supabase-key as well, the prune refuses both, as the backup does', async () => {
  const prune = await pruneHook(svc, {
    ...pruneInputs(svc, bucket, newPrefix('both'), { 'keep-last': '1' }, 'function'),
    'supabase-key': svc.env.SUPABASE_SERVICE_ROLE_KEY
  })
  assert.equal(prune.exitCode, 1)
  assert.match(prune.stdout, /Input 'supabase-key': must be empty when 'backup-api-key' is set/)
})
