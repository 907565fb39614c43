import { InputError } from '../errors.js'
import {
  identifyRowDespiteProblems,
  LedgerInput,
  parseLedgerAccess,
  RowAccessInput,
  parseSupabaseTarget,
  type LedgerTarget
} from '../ledger/inputs.js'
import { clip, isUuid, parseBoolean, parseDuration, type InputProblem, type InputReader } from '../runner/inputs.js'
import { parseStoreLocation, StoreInput, STORE_SECRET_INPUTS, type StoreLocation } from '../store/inputs.js'

/** The sweep's inputs (sweep/action.yml). */
export const Input = {
  ...RowAccessInput,
  DispatchId: LedgerInput.DispatchId,
  BackupJobResult: 'backup-job-result',
  MaxAge: 'max-age',
  DryRun: 'dry-run',
  GithubToken: 'github-token',
  Repository: 'repository',
  ...StoreInput
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Masked before anything is printed. */
export const SECRET_INPUTS = [Input.SupabaseKey, Input.BackupApiKey, Input.GithubToken, ...STORE_SECRET_INPUTS]

/** `needs.<job>.result`: how the backup job ended, as GitHub reports it to the jobs that need it. */
export const JOB_RESULTS = ['success', 'failure', 'cancelled', 'skipped'] as const
export type JobResult = (typeof JOB_RESULTS)[number]

/**
 * Which rows the sweep judges: every in_progress row (a schedule), or, as the finalizer job of a
 * backup run, the one row that run was dispatched for, once its backup job has ended.
 */
export type SweepScope = { kind: 'all' } | { kind: 'dispatch'; dispatchId: string; backupJobResult: JobResult }

/** What the sweep needs: where the rows live, which to judge, how old is too old, and how to ask GitHub about runs. */
export interface SweepInputs extends LedgerTarget {
  scope: SweepScope
  /** Rows no known-running run holds are failed once they are older than this. */
  maxAgeMs: number
  /** Report what would change, write nothing. */
  dryRun: boolean
  /** '' when none: runs cannot be checked, only max-age applies. */
  githubToken: string
  /** `owner/name` whose workflow runs the rows' workflow_run_id refer to. */
  repository: { owner: string; repo: string }
  /** With `bucket`: the store, where the unfinished upload of a row it fails (its upload_key) is aborted. */
  store: StoreLocation | undefined
}

/** Rows no run can be shown to hold are failed once older than this, unless max-age says otherwise. */
const DEFAULT_MAX_AGE = '6h'
const REPOSITORY = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/

/** The sweep's inputs. Throws InputError naming every bad input. */
export function parseSweepInputs(read: InputReader<InputName>, env: NodeJS.ProcessEnv = process.env): SweepInputs {
  const problems: InputProblem[] = []
  const target = parseSupabaseTarget(read, problems)
  const access = parseLedgerAccess(read, target.table, problems)
  const scope = parseScope(read, problems)
  const rawMaxAge = read(Input.MaxAge) || DEFAULT_MAX_AGE
  const maxAgeMs = parseDuration(rawMaxAge)
  if (maxAgeMs === undefined) {
    problems.push({ input: Input.MaxAge, message: `must be a duration such as 90m, 6h or 2d, got '${clip(rawMaxAge)}'.` })
  }
  const dryRun = parseBoolean(read, Input.DryRun, problems)
  // The store is optional: without it a lost runner's unfinished upload is left to the lifecycle rule.
  const store = read(Input.Bucket) === '' ? undefined : parseStoreLocation(read, env, problems)
  const rawRepository = read(Input.Repository) || env.GITHUB_REPOSITORY || ''
  const repository = REPOSITORY.exec(rawRepository)
  if (!repository) {
    problems.push({
      input: Input.Repository,
      message: `must be owner/name, the repository whose runs back up the rows; got '${clip(rawRepository)}'.`
    })
  }
  if (problems.length > 0 || maxAgeMs === undefined || !repository || !access || !scope) throw new InputError(problems)
  return {
    ...target,
    access,
    scope,
    maxAgeMs,
    dryRun,
    githubToken: read(Input.GithubToken),
    repository: { owner: repository[1] ?? '', repo: repository[2] ?? '' },
    store
  }
}

/** `dispatch-id` and `backup-job-result` go together: the finalizer job of one backup run. */
function parseScope(read: InputReader<InputName>, problems: InputProblem[]): SweepScope | undefined {
  const dispatchId = read(Input.DispatchId)
  const rawResult = read(Input.BackupJobResult)
  if (dispatchId === '' && rawResult === '') return { kind: 'all' }
  const result = JOB_RESULTS.find(known => known === rawResult.toLowerCase())
  if (dispatchId === '') {
    problems.push({
      input: Input.DispatchId,
      message: "is required with 'backup-job-result': the dispatch id the backup job was given (for example `${{ inputs.dispatch_id }}`)."
    })
  } else if (!isUuid(dispatchId)) {
    problems.push({
      input: Input.DispatchId,
      message: `must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got '${clip(dispatchId)}'.`
    })
  }
  if (rawResult === '') {
    problems.push({
      input: Input.BackupJobResult,
      message:
        "is required with 'dispatch-id': how the backup job ended, `${{ needs.<backup job>.result }}`, in a job that `needs:` it and runs `if: always()`."
    })
  } else if (!result) {
    problems.push({
      input: Input.BackupJobResult,
      message: `must be ${JOB_RESULTS.join(', ')} (\`\${{ needs.<backup job>.result }}\`), got '${clip(rawResult)}'.`
    })
  }
  if (!result || !isUuid(dispatchId)) return undefined
  return { kind: 'dispatch', dispatchId: dispatchId.toLowerCase(), backupJobResult: result }
}

/**
 * The finalizer is the last step that can fail a row before a schedule does: inputs with problems
 * that still identify the row and a way to reach it (both keys set, say) still finalize it, with
 * the defaults for the rest, and the step fails afterwards naming the problems. Anything else
 * throws InputError, as parseSweepInputs does.
 */
export function parseFinalizerDespiteProblems(
  read: InputReader<InputName>,
  env: NodeJS.ProcessEnv = process.env
): { inputs: SweepInputs; refusal: InputError | undefined } {
  try {
    return { inputs: parseSweepInputs(read, env), refusal: undefined }
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    // The sweep never creates rows: it has no create-row.
    const identified = identifyRowDespiteProblems(name => (name === LedgerInput.CreateRow ? '' : read(name)))
    const ignored: InputProblem[] = []
    const scope = parseScope(read, ignored)
    if (!identified || scope?.kind !== 'dispatch') throw error
    const repository = REPOSITORY.exec(read(Input.Repository) || env.GITHUB_REPOSITORY || '')
    const inputs: SweepInputs = {
      ...identified.target,
      scope,
      maxAgeMs: parseDuration(DEFAULT_MAX_AGE) ?? 0,
      dryRun: false,
      githubToken: read(Input.GithubToken),
      repository: { owner: repository?.[1] ?? '', repo: repository?.[2] ?? '' },
      store: undefined
    }
    return { inputs, refusal: error }
  }
}
