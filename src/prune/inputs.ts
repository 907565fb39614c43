import { InputError } from '../errors.js'
import { parseLedgerAccess, parseSupabaseTarget, RowAccessInput, type LedgerTarget } from '../ledger/inputs.js'
import { clip, parseBoolean, type InputProblem, type InputReader } from '../runner/inputs.js'
import { parseStoreLocation, StoreInput, STORE_SECRET_INPUTS, type StoreLocation } from '../store/inputs.js'
import { RULES, type Policy, type Rule } from './policy.js'

/** The prune's inputs (prune/action.yml). */
export const Input = {
  ...RowAccessInput,
  Prefix: 'prefix',
  KeepLast: 'keep-last',
  KeepHourly: 'keep-hourly',
  KeepDaily: 'keep-daily',
  KeepWeekly: 'keep-weekly',
  KeepMonthly: 'keep-monthly',
  KeepYearly: 'keep-yearly',
  DryRun: 'dry-run',
  ...StoreInput
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Masked before anything is printed. */
export const SECRET_INPUTS = [Input.SupabaseKey, Input.BackupApiKey, ...STORE_SECRET_INPUTS]

const KEEP_INPUT: Record<Rule, InputName> = {
  last: Input.KeepLast,
  hourly: Input.KeepHourly,
  daily: Input.KeepDaily,
  weekly: Input.KeepWeekly,
  monthly: Input.KeepMonthly,
  yearly: Input.KeepYearly
}

/** S3's limit on a key, and so on a prefix. */
const MAX_PREFIX_BYTES = 1024
const MAX_KEEP = 1_000_000

export interface PruneInputs extends LedgerTarget {
  /** The key prefix whose success rows (and objects) this prune judges: one schedule's backups. */
  prefix: string
  policy: Policy
  /** Report the decisions, write and delete nothing. */
  dryRun: boolean
  store: StoreLocation
}

/** The prune's inputs. Throws InputError naming every bad input. */
export function parsePruneInputs(read: InputReader<InputName>, env: NodeJS.ProcessEnv = process.env): PruneInputs {
  const problems: InputProblem[] = []
  const target = parseSupabaseTarget(read, problems)
  const access = parseLedgerAccess(read, target.table, problems)
  const prefix = read(Input.Prefix)
  if (prefix === '') {
    problems.push({
      input: Input.Prefix,
      message:
        "is required: the key prefix of the backups to prune, such as 'backups/' (the default key's) or 'monthly/', so that one schedule's policy never touches another's."
    })
  } else if (Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) {
    problems.push({ input: Input.Prefix, message: `must be at most ${MAX_PREFIX_BYTES} bytes, as S3 keys are.` })
  }
  const policy = parsePolicy(read, problems)
  const dryRun = parseBoolean(read, Input.DryRun, problems)
  const store = parseStoreLocation(read, env, problems)
  if (problems.length > 0 || !access) throw new InputError(problems)
  return { ...target, access, prefix, policy, dryRun, store }
}

/** The keep-* counts: whole numbers, at least one above 0 (keep-last 1 to keep only the newest). */
function parsePolicy(read: InputReader<InputName>, problems: InputProblem[]): Policy {
  const policy = Object.fromEntries(RULES.map(rule => [rule, 0])) as Policy
  let invalid = false
  for (const rule of RULES) {
    const input = KEEP_INPUT[rule]
    const raw = read(input)
    if (raw === '') continue
    if (!/^\d+$/.test(raw) || Number(raw) > MAX_KEEP) {
      problems.push({ input, message: `must be a whole number of backups to keep, 0 or more, got '${clip(raw)}'.` })
      invalid = true
      continue
    }
    policy[rule] = Number(raw)
  }
  if (!invalid && RULES.every(rule => policy[rule] === 0)) {
    problems.push({
      input: Input.KeepLast,
      message: `or another of ${RULES.map(rule => `'${KEEP_INPUT[rule]}'`).join(', ')} must be above 0: a policy with no rule would delete every backup but the newest. Set 'keep-last: 1' if that is what you want.`
    })
  }
  return policy
}
