import { LedgerError } from '../errors.js'
import type { BackupRow, Holder, InProgressSource, LedgerBackend, RowPatch, SuccessPage, SuccessSource } from './ledger.js'
import { REQUEST_TIMEOUT_MS } from '../retry.js'

/** What supabase/functions/update-backup answers: the row, or an error with a code. */
interface FunctionAnswer {
  backup?: BackupRow
  /** The answer of list_in_progress and list_success. */
  backups?: BackupRow[]
  updated?: boolean
  error?: string
  code?: string | number
  /** Supabase's gateway answers errors of its own as {message} (a missing function, an invalid JWT). */
  message?: string
}

/**
 * The ledger backend for least privilege: every read and write goes through the update-backup
 * edge function, authenticated with `backup-api-key`, so the workflow holds no database key.
 * The function applies the same state machine server-side (one conditional UPDATE per write).
 */
export class FunctionLedgerBackend implements LedgerBackend, InProgressSource, SuccessSource {
  readonly visibilityHint = "that the update-backup function's BACKUP_TABLE secret names the table the app writes to"
  private readonly url: string

  constructor(
    supabaseUrl: string,
    private readonly functionName: string,
    private readonly apiKey: string
  ) {
    this.url = `${supabaseUrl}/functions/v1/${functionName}`
  }

  async findByDispatchId(dispatchId: string): Promise<BackupRow[]> {
    const answer = await this.call('read the row', { action: 'lookup', dispatch_id: dispatchId })
    // A dispatch id several rows share is a 409 the function explains; `call` throws it.
    return answer.backup ? [answer.backup] : []
  }

  async getById(id: string): Promise<BackupRow | undefined> {
    return (await this.call('read the row', { action: 'lookup', backup_id: id })).backup
  }

  async insert(row: { dispatch_id: string; workflow_run_id: string }): Promise<BackupRow> {
    const answer = await this.call('create the row', { action: 'create', ...row })
    if (!answer.backup) throw new LedgerError(`Could not create the row through the ${this.functionName} function: it answered no row.`)
    return answer.backup
  }

  /**
   * The function applies the same conditional update server-side: a claim only takes a row no
   * other run holds, and with `holder` (the job's claim, migration 010) every write only applies
   * while the row is held as expected. Without `holder` its finalize keeps seed 000's contract,
   * where a caller may finalize without claiming.
   */
  async updateIfInProgress(id: string, patch: RowPatch, holder: Holder): Promise<BackupRow[]> {
    const { workflow_run_id } = patch
    const expected = holder.claimedBy === undefined ? {} : { holder: { workflow_run_id: holder.runId, claimed_by: holder.claimedBy } }
    const body = !('status' in patch)
      ? {
          action: 'claim',
          backup_id: id,
          workflow_run_id,
          ...(patch.claimed_by === undefined ? {} : { claimed_by: patch.claimed_by, ...expected }),
          ...(patch.upload_key === undefined ? {} : { upload_key: patch.upload_key })
        }
      : patch.status === 'success'
        ? {
            action: 'finalize',
            backup_id: id,
            workflow_run_id,
            status: 'success',
            s3_key: patch.s3_key,
            size_bytes: patch.size_bytes,
            ...(patch.sha256 === undefined ? {} : { sha256: patch.sha256 }),
            ...expected
          }
        : { action: 'finalize', backup_id: id, workflow_run_id, status: 'failed', error_text: patch.error_text, ...expected }
    const answer = await this.call('update the row', body)
    // Not updated: the row had finished (a repeat of our own result, or another writer's), or is held otherwise. Ledger rereads it.
    return answer.updated && answer.backup ? [answer.backup] : []
  }

  /** The function's `expire`: the same conditional update, server-side; a row not changed comes back with updated: false. */
  async expireIfSuccess(id: string): Promise<BackupRow[]> {
    const answer = await this.call('mark the row expired', { action: 'expire', backup_id: id })
    return answer.updated && answer.backup ? [answer.backup] : []
  }

  /** For the prune: a page of one prefix's success rows, newest first (the function's list_success). */
  async listSuccess(page: SuccessPage): Promise<BackupRow[]> {
    const answer = await this.call('list the success rows', {
      action: 'list_success',
      prefix: page.prefix,
      limit: page.limit,
      offset: page.offset,
      ...(page.finishedNotAfter === undefined ? {} : { finished_not_after: page.finishedNotAfter })
    })
    return answer.backups ?? []
  }

  /** For the sweep: the in_progress rows, oldest first (the function's list_in_progress). */
  async listInProgress(limit: number): Promise<BackupRow[]> {
    const answer = await this.call('list the in_progress rows', { action: 'list_in_progress', limit })
    return answer.backups ?? []
  }

  /** One request; the function's answers mapped to what Ledger expects, errors to what a user can act on. */
  private async call(action: string, body: Record<string, unknown>): Promise<FunctionAnswer> {
    const what = `Could not ${action} through the ${this.functionName} function (${this.url})`
    let response: Response
    let answer: FunctionAnswer
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json', 'x-client-info': 'supabase-s3-backup' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      })
      const text = await response.text()
      answer = parseAnswer(text)
    } catch (error) {
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'no answer within 10 s' : errorReason(error)
      throw new LedgerError(`${what}: ${reason}.`, true)
    }
    const { status } = response
    const detail = answer.error ?? answer.message ?? `HTTP ${status}`
    if (response.ok && (answer.backup || Array.isArray(answer.backups))) return answer
    if (response.ok) {
      throw new LedgerError(
        `${what}: the answer has no row. Is 'update-function' the update-backup function from this action's repository?`
      )
    }
    if (status === 404 && answer.code === 'row_not_found') return {}
    if (status === 409 && answer.code === 'already_finished') return { backup: answer.backup, updated: false }
    if (status === 408 || status === 429 || status >= 500) {
      if (answer.code === 'misconfigured') throw new LedgerError(`${what}: the function is misconfigured: ${detail}`)
      throw new LedgerError(`${what}: HTTP ${status}: ${detail}`, true)
    }
    if (status === 401 && answer.code === 'invalid_api_key') {
      throw new LedgerError(
        `${what}: the function rejected 'backup-api-key' (${detail}). It must equal the function's BACKUP_API_KEY secret; check the secret for stray spaces or newlines.`
      )
    }
    if (status === 401 || status === 403) {
      throw new LedgerError(
        `${what}: Supabase refused the request before it reached the function (${detail}). Deploy it with JWT verification off: \`supabase functions deploy ${this.functionName} --no-verify-jwt\` (supabase/config.toml of this repository sets verify_jwt = false).`
      )
    }
    if (status === 404) {
      throw new LedgerError(
        `${what}: there is no such edge function (${detail}). Deploy supabase/functions/update-backup from this action's repository, or set 'update-function' to the name you deployed it under.`
      )
    }
    if (status === 400 && /must be one of|Unknown field/.test(detail)) {
      throw new LedgerError(
        `${what}: HTTP 400: ${detail} The deployed function is older than this action: redeploy supabase/functions/update-backup from this version.`
      )
    }
    throw new LedgerError(`${what}: HTTP ${status}: ${detail}`)
  }
}

function parseAnswer(text: string): FunctionAnswer {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as FunctionAnswer
  } catch {
    // Not JSON: a proxy or gateway page; the status decides.
  }
  return {}
}

function errorReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause
  if (cause?.code) return `no answer from the Supabase URL (${cause.code})`
  return `no answer from the Supabase URL (${error instanceof Error ? error.message : String(error)})`
}
