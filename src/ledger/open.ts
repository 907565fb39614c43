import type { InputReader } from '../runner/inputs.js'
import type { RetryPolicy } from '../retry.js'
import { FunctionLedgerBackend } from './function-backend.js'
import { parseLedgerInputs, type LedgerInputName, type LedgerTarget } from './inputs.js'
import { Ledger } from './ledger.js'
import { TableLedgerBackend } from './table-backend.js'

/** The backend the access points at: the table through PostgREST, or the update-backup function. */
export function ledgerBackend(target: LedgerTarget): TableLedgerBackend | FunctionLedgerBackend {
  const { access } = target
  return access.kind === 'function'
    ? new FunctionLedgerBackend(target.supabaseUrl, access.functionName, access.apiKey)
    : new TableLedgerBackend(target.supabaseUrl, access.supabaseKey, target.table)
}

/** The ledger the inputs point at, with the dispatch id and create-row choice they carry. Throws InputError. */
export function openLedger(
  read: InputReader<LedgerInputName>,
  workflowRunId: string,
  retryPolicy: RetryPolicy,
  log: (message: string) => void
): { ledger: Ledger; dispatchId: string | undefined; createRow: boolean } {
  const inputs = parseLedgerInputs(read)
  return {
    ledger: new Ledger(ledgerBackend(inputs), inputs.table, workflowRunId, retryPolicy, log),
    dispatchId: inputs.dispatchId,
    createRow: inputs.createRow
  }
}
