// The randomized fault matrix with the finalizer job (npm run chaos), smaller: CHAOS_RUNS runs (default 40) from
// CHAOS_SEED (default: a new seed each time, printed so a failure can be replayed with
// `npm run chaos -- --runs N --seed S`).
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { chaosTable, describePlan, runChaos } from '../harness/chaos.js'

const runs = Number(process.env.CHAOS_RUNS ?? 40)
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))

it(`${runs} randomized runs of main and post under faults and the finalizer job keep every promise (seed ${seed})`, async t => {
  const results = await runChaos({ runs, seed, log: line => t.diagnostic(line) })
  t.diagnostic(`\n${chaosTable(results)}`)
  const violations = results
    .filter(run => run.violations.length > 0)
    .map(run => `#${run.plan.index} ${describePlan(run.plan)}: ${run.violations.join(' | ')}\n${run.logs}`)
  assert.deepEqual(violations, [], `replay with: npm run chaos -- --runs ${runs} --seed ${seed}`)
})
