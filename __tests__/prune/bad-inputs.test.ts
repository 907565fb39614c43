// Bad inputs fail the step naming each input, before anything is read, written or deleted.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { errorsOf } from '../harness/backup-job.js'
import { keysUnder, newPrefix, pruneHook, pruneInputs, rowsUnder, storeBackups } from '../harness/prune.js'
import { services } from '../harness/services.js'

const svc = await services()
after(() => svc.end())
const bucket = await svc.newBucket('prune-inputs')

it('no prefix, no rule above 0, a count that is not a number: each named, nothing touched', async () => {
  const prefix = newPrefix('inputs')
  await storeBackups(svc, bucket, prefix, [new Date(Date.UTC(2025, 0, 2)), new Date(Date.UTC(2025, 0, 1))])
  const noRule = await pruneHook(svc, pruneInputs(svc, bucket, prefix, { 'keep-daily': '0' }))
  assert.equal(noRule.exitCode, 1)
  assert.match(
    errorsOf(noRule),
    /Input 'keep-last': or another of .* must be above 0: a policy with no rule would delete every backup but the newest\. Set 'keep-last: 1'/
  )

  const bad = await pruneHook(svc, pruneInputs(svc, bucket, '', { 'keep-weekly': 'four', 'dry-run': 'maybe' }))
  assert.equal(bad.exitCode, 1)
  assert.match(errorsOf(bad), /Input 'prefix': is required/)
  assert.match(errorsOf(bad), /Input 'keep-weekly': must be a whole number of backups to keep, 0 or more, got 'four'/)
  assert.match(errorsOf(bad), /Input 'dry-run': must be true or false/)

  assert.ok((await rowsUnder(svc, prefix)).every(row => row.expired_at === null))
  assert.equal((await keysUnder(svc, bucket, prefix)).size, 2)
})
