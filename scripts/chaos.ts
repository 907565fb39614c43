// npm run chaos -- --runs N --seed S [--only 3,17]: the randomized fault matrix on the local
// services (see __tests__/harness/chaos.ts). Prints each run, a table per fault class and the
// seed to replay it; exits 1 on any violation.
import { parseArgs } from 'node:util'
import { chaosTable, describePlan, runChaos } from '../__tests__/harness/chaos.js'

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '40' }, seed: { type: 'string' }, only: { type: 'string' } },
  strict: true
})
const runs = Number(values.runs)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
const only = values.only?.split(',').map(Number)
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed) || only?.some(n => !Number.isSafeInteger(n) || n < 0)) {
  console.error('usage: npm run chaos -- --runs N --seed S [--only i,j]')
  process.exit(2)
}

console.log(
  `chaos: ${only ? `runs ${only.join(',')}` : `${runs} runs`}, seed ${seed} (replay: npm run chaos -- --runs ${runs} --seed ${seed})`
)
const startedAt = Date.now()
const results = await runChaos({ runs, seed, only, log: line => console.log(line) })
const failed = results.filter(run => run.violations.length > 0)
console.log(`\n${chaosTable(results)}\n`)
for (const run of failed) {
  console.log(`violation in run #${run.plan.index} (${describePlan(run.plan)}):\n  ${run.violations.join('\n  ')}`)
  if (process.env.CHAOS_LOGS) console.log(run.logs)
}
console.log(
  `chaos: seed ${seed}, ${results.length} runs in ${Math.round((Date.now() - startedAt) / 1000)} s, ${failed.length} with violations`
)
process.exit(failed.length > 0 ? 1 : 0)
