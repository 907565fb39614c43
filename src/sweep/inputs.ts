import { InputError } from '../errors.js'
import { LedgerInput, parseSupabaseTarget } from '../ledger/inputs.js'
import { clip, parseBoolean, parseDuration, type InputProblem, type InputReader } from '../runner/inputs.js'

/** The sweep's inputs (sweep/action.yml). */
export const Input = {
  SupabaseUrl: LedgerInput.SupabaseUrl,
  SupabaseKey: LedgerInput.SupabaseKey,
  Table: LedgerInput.Table,
  MaxAge: 'max-age',
  DryRun: 'dry-run',
  GithubToken: 'github-token',
  Repository: 'repository'
} as const
export type InputName = (typeof Input)[keyof typeof Input]

/** Masked before anything is printed. */
export const SECRET_INPUTS = [Input.SupabaseKey, Input.GithubToken]

/** What the sweep needs: where the rows live, how old is too old, and how to ask GitHub about runs. */
export interface SweepInputs {
  supabaseUrl: string
  /** The sweep lists and writes the table directly: it needs table rights, not the update-backup function. */
  supabaseKey: string
  table: string
  /** Rows no known-running run holds are failed once they are older than this. */
  maxAgeMs: number
  /** Report what would change, write nothing. */
  dryRun: boolean
  /** '' when none: runs cannot be checked, only max-age applies. */
  githubToken: string
  /** `owner/name` whose workflow runs the rows' workflow_run_id refer to. */
  repository: { owner: string; repo: string }
}

const REPOSITORY = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/

/** The sweep's inputs. Throws InputError naming every bad input. */
export function parseSweepInputs(read: InputReader<InputName>, env: NodeJS.ProcessEnv = process.env): SweepInputs {
  const problems: InputProblem[] = []
  const target = parseSupabaseTarget(read, problems)
  const supabaseKey = read(Input.SupabaseKey)
  if (supabaseKey === '') {
    problems.push({
      input: Input.SupabaseKey,
      message:
        "is required: a key whose role may read and update the table (the project's secret key sb_secret_..., or its legacy service role key, stored as a secret)."
    })
  }
  const rawMaxAge = read(Input.MaxAge) || '6h'
  const maxAgeMs = parseDuration(rawMaxAge)
  if (maxAgeMs === undefined) {
    problems.push({ input: Input.MaxAge, message: `must be a duration such as 90m, 6h or 2d, got '${clip(rawMaxAge)}'.` })
  }
  const dryRun = parseBoolean(read, Input.DryRun, problems)
  const rawRepository = read(Input.Repository) || env.GITHUB_REPOSITORY || ''
  const repository = REPOSITORY.exec(rawRepository)
  if (!repository) {
    problems.push({
      input: Input.Repository,
      message: `must be owner/name, the repository whose runs back up the rows; got '${clip(rawRepository)}'.`
    })
  }
  if (problems.length > 0 || maxAgeMs === undefined || !repository) throw new InputError(problems)
  return {
    ...target,
    supabaseKey,
    maxAgeMs,
    dryRun,
    githubToken: read(Input.GithubToken),
    repository: { owner: repository[1] ?? '', repo: repository[2] ?? '' }
  }
}
