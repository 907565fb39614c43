import { InputError } from '../errors.js'
import { clip, isHttpUrl, isUuid, parseBoolean, type InputProblem, type InputReader } from '../runner/inputs.js'

/** The inputs that identify and reach the row, as declared in the action.yml files that take them. */
export const LedgerInput = {
  DispatchId: 'dispatch-id',
  CreateRow: 'create-row',
  SupabaseUrl: 'supabase-url',
  SupabaseKey: 'supabase-key',
  Table: 'table',
  BackupApiKey: 'backup-api-key',
  UpdateFunction: 'update-function'
} as const
export type LedgerInputName = (typeof LedgerInput)[keyof typeof LedgerInput]

/** Where the rows live and how to reach them: what every sub-action that reads many rows (sweep, prune) takes. */
export const RowAccessInput = {
  SupabaseUrl: LedgerInput.SupabaseUrl,
  SupabaseKey: LedgerInput.SupabaseKey,
  BackupApiKey: LedgerInput.BackupApiKey,
  UpdateFunction: LedgerInput.UpdateFunction,
  Table: LedgerInput.Table
} as const

/** Masked before anything is printed. */
export const LEDGER_SECRET_INPUTS = [LedgerInput.SupabaseKey, LedgerInput.BackupApiKey] as const

export const DEFAULT_TABLE = 'backup_history'
export const DEFAULT_UPDATE_FUNCTION = 'update-backup'

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const FUNCTION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/

/**
 * How the action reaches the rows: the table itself with a key that has table rights, or only
 * the update-backup edge function with its API key (least privilege: CI holds no database key).
 */
export type LedgerAccess = { kind: 'table'; supabaseKey: string } | { kind: 'function'; apiKey: string; functionName: string }

/** Where the rows live and how they are reached. */
export interface LedgerTarget {
  supabaseUrl: string
  table: string
  access: LedgerAccess
}

/** What the action needs to find and write the row. Checked first: without these no row can be touched. */
export interface LedgerInputs extends LedgerTarget {
  /** Lower-cased UUID of the row, or undefined when `create-row` makes a new one. */
  dispatchId: string | undefined
  createRow: boolean
}

/** Inputs that identify and reach the row. Throws InputError naming every bad input. */
export function parseLedgerInputs(read: InputReader<LedgerInputName>): LedgerInputs {
  const problems: InputProblem[] = []
  const createRow = parseBoolean(read, LedgerInput.CreateRow, problems)
  const rawDispatchId = read(LedgerInput.DispatchId)
  let dispatchId: string | undefined
  if (rawDispatchId === '') {
    if (!createRow) {
      problems.push({
        input: LedgerInput.DispatchId,
        message:
          "is required: pass the UUID of the backup_history row to finalize (for example `${{ inputs.dispatch_id }}`), or set 'create-row: true' for scheduled runs. The action never falls back to the run id."
      })
    }
  } else if (!isUuid(rawDispatchId)) {
    problems.push({
      input: LedgerInput.DispatchId,
      message: `must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got '${clip(rawDispatchId)}'.`
    })
  } else {
    dispatchId = rawDispatchId.toLowerCase()
  }

  const { supabaseUrl, table } = parseSupabaseTarget(read, problems)
  const access = parseLedgerAccess(read, table, problems)
  if (problems.length > 0 || !access) throw new InputError(problems)
  return { dispatchId, createRow, supabaseUrl, access, table }
}

/**
 * A row that inputs with problems still identify, and a way to reach it: the row is failed with
 * the problems rather than left in_progress. Undefined when it cannot be: no valid dispatch-id,
 * no valid supabase-url, no usable key, or create-row (which finds no row: it would make one).
 */
export function identifyRowDespiteProblems(read: InputReader<LedgerInputName>): { dispatchId: string; target: LedgerTarget } | undefined {
  const dispatchId = read(LedgerInput.DispatchId)
  if (!isUuid(dispatchId) || /^true$/i.test(read(LedgerInput.CreateRow))) return undefined
  const ignored: InputProblem[] = []
  const { supabaseUrl, table } = parseSupabaseTarget(read, ignored)
  if (ignored.some(problem => problem.input === LedgerInput.SupabaseUrl)) return undefined
  // The function first: with both keys set, backup-api-key is what the step asked to report through.
  const apiKey = read(LedgerInput.BackupApiKey)
  const functionName = read(LedgerInput.UpdateFunction) || DEFAULT_UPDATE_FUNCTION
  const supabaseKey = read(LedgerInput.SupabaseKey)
  let access: LedgerAccess | undefined
  if (apiKey !== '' && FUNCTION_NAME.test(functionName)) access = { kind: 'function', apiKey, functionName }
  else if (supabaseKey !== '' && TABLE_NAME.test(table)) access = { kind: 'table', supabaseKey }
  if (!access) return undefined
  return { dispatchId: dispatchId.toLowerCase(), target: { supabaseUrl, table, access } }
}

/** supabase-url and table: where the rows live, for every action that reads them. */
export function parseSupabaseTarget(
  read: InputReader<typeof LedgerInput.SupabaseUrl | typeof LedgerInput.Table>,
  problems: InputProblem[]
): { supabaseUrl: string; table: string } {
  const supabaseUrl = read(LedgerInput.SupabaseUrl)
  if (supabaseUrl === '') {
    problems.push({ input: LedgerInput.SupabaseUrl, message: 'is required: the project URL, e.g. https://abcd.supabase.co.' })
  } else if (!isHttpUrl(supabaseUrl)) {
    problems.push({
      input: LedgerInput.SupabaseUrl,
      message: `must be an http(s) URL such as https://abcd.supabase.co, got '${clip(supabaseUrl)}'.`
    })
  }
  const table = read(LedgerInput.Table) || DEFAULT_TABLE
  if (!TABLE_NAME.test(table)) {
    problems.push({ input: LedgerInput.Table, message: `must be a plain table name like backup_history, got '${clip(table)}'.` })
  }
  return { supabaseUrl: supabaseUrl.replace(/\/+$/, ''), table }
}

/** `supabase-key` (table rights) or `backup-api-key` (the update-backup function), never both. */
export function parseLedgerAccess(
  read: InputReader<typeof LedgerInput.SupabaseKey | typeof LedgerInput.BackupApiKey | typeof LedgerInput.UpdateFunction>,
  table: string,
  problems: InputProblem[]
): LedgerAccess | undefined {
  const supabaseKey = read(LedgerInput.SupabaseKey)
  const apiKey = read(LedgerInput.BackupApiKey)
  const functionName = read(LedgerInput.UpdateFunction) || DEFAULT_UPDATE_FUNCTION
  if (apiKey === '') {
    if (functionName !== DEFAULT_UPDATE_FUNCTION) {
      problems.push({
        input: LedgerInput.UpdateFunction,
        message: "only applies with 'backup-api-key'; set that too, or remove this input."
      })
    }
    if (supabaseKey === '') {
      problems.push({
        input: LedgerInput.SupabaseKey,
        message:
          "is required: a key whose role may read and update the table (the project's secret key sb_secret_..., or its legacy service role key, stored as a secret). Or set 'backup-api-key' instead, to report through the update-backup edge function with no database key in CI."
      })
      return undefined
    }
    return { kind: 'table', supabaseKey }
  }
  // Holding both would defeat the point of the function: CI keeping no key with table rights.
  if (supabaseKey !== '') {
    problems.push({
      input: LedgerInput.SupabaseKey,
      message:
        "must be empty when 'backup-api-key' is set: the action then reaches the table only through the update-backup function, so the workflow needs no key with table rights. Remove 'supabase-key' from the step."
    })
  }
  if (table !== DEFAULT_TABLE) {
    problems.push({
      input: LedgerInput.Table,
      message: "does not apply with 'backup-api-key': the function's BACKUP_TABLE secret names the table. Remove 'table' from the step."
    })
  }
  if (!FUNCTION_NAME.test(functionName)) {
    problems.push({
      input: LedgerInput.UpdateFunction,
      message: `must be the name of the deployed edge function, like update-backup; got '${clip(functionName)}'.`
    })
  }
  return { kind: 'function', apiKey, functionName }
}
