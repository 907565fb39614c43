import { randomUUID } from 'node:crypto'
import { InputError } from '../errors.js'
import type { RetryPolicy } from '../retry.js'
import type { RunContext } from '../runner/context.js'
import type { InputReader } from '../runner/inputs.js'
import { FunctionLedgerBackend } from './function-backend.js'
import { identifyRowDespiteProblems, parseLedgerInputs, type LedgerInputName, type LedgerTarget } from './inputs.js'
import { claimToken, Ledger, type Writer } from './ledger.js'
import { TableLedgerBackend } from './table-backend.js'

/** The backend the access points at: the table through PostgREST, or the update-backup function. */
export function ledgerBackend(target: LedgerTarget): TableLedgerBackend | FunctionLedgerBackend {
  const { access } = target
  return access.kind === 'function'
    ? new FunctionLedgerBackend(target.supabaseUrl, access.functionName, access.apiKey)
    : new TableLedgerBackend(target.supabaseUrl, access.supabaseKey, target.table)
}

/** A fresh claim token for this job: the nonce tells apart the legs of a matrix, which share run, attempt and job. */
export function newClaimToken(context: RunContext): string {
  return claimToken(context.runId, context.runAttempt, context.job, randomUUID().slice(0, 8))
}

/** The row's ledger as the inputs give it. */
export interface OpenedLedger {
  ledger: Ledger
  dispatchId: string | undefined
  createRow: boolean
  /** The ledger inputs' problems, when they still identify a row: it must be failed with them. */
  refusal: InputError | undefined
}

/**
 * The ledger the inputs point at, with the dispatch id and create-row choice they carry. Inputs
 * with problems that still identify a row and a way to reach it (both keys set, say) open that
 * ledger with the problems as `refusal`; otherwise they throw InputError: no row can be touched.
 */
export function openLedger(
  read: InputReader<LedgerInputName>,
  writer: Writer,
  retryPolicy: RetryPolicy,
  log: (message: string) => void
): OpenedLedger {
  const open = (target: LedgerTarget): Ledger => new Ledger(ledgerBackend(target), target.table, writer, retryPolicy, log)
  try {
    const inputs = parseLedgerInputs(read)
    return { ledger: open(inputs), dispatchId: inputs.dispatchId, createRow: inputs.createRow, refusal: undefined }
  } catch (error) {
    const identified = error instanceof InputError ? identifyRowDespiteProblems(read) : undefined
    if (!identified) throw error
    return { ledger: open(identified.target), dispatchId: identified.dispatchId, createRow: false, refusal: error as InputError }
  }
}
