import { createClient, type SupabaseClient } from '@supabase/supabase-js'
import { LedgerError } from '../errors.js'
import {
  prefixPattern,
  type BackupRow,
  type Holder,
  type InProgressSource,
  type LedgerBackend,
  type RowPatch,
  type SuccessPage,
  type SuccessSource
} from './ledger.js'
import { REQUEST_TIMEOUT_MS } from '../retry.js'

interface PostgrestFailure {
  message: string
  code?: string
  details?: string | null
  hint?: string | null
}

/** The ledger backend that reads and writes the table directly through PostgREST (supabase-js). */
export class TableLedgerBackend implements LedgerBackend, InProgressSource, SuccessSource {
  readonly visibilityHint = "that the role of 'supabase-key' may read the row (RLS)"
  private readonly client: SupabaseClient

  constructor(
    supabaseUrl: string,
    supabaseKey: string,
    private readonly table: string
  ) {
    this.client = createClient(supabaseUrl, supabaseKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: {
        headers: { 'X-Client-Info': 'supabase-s3-backup' },
        fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      }
    })
  }

  async findByDispatchId(dispatchId: string, limit: number): Promise<BackupRow[]> {
    const { data, error, status } = await this.client
      .from(this.table)
      .select('*')
      .eq('dispatch_id', dispatchId)
      .order('created_at', { ascending: true })
      .limit(limit)
      .retry(false)
    if (error) throw this.failure('read the row', error, status)
    return data as BackupRow[]
  }

  /** The restore's look-up by object key (the update-backup function offers none). */
  async findByS3Key(key: string, limit: number): Promise<BackupRow[]> {
    const { data, error, status } = await this.client.from(this.table).select('*').eq('s3_key', key).limit(limit).retry(false)
    if (error) throw this.failure('read the row', error, status)
    return data as BackupRow[]
  }

  async getById(id: string): Promise<BackupRow | undefined> {
    const { data, error, status } = await this.client.from(this.table).select('*').eq('id', id).limit(1).retry(false)
    if (error) throw this.failure('read the row', error, status)
    return (data as BackupRow[])[0]
  }

  async insert(row: { dispatch_id: string; workflow_run_id: string }): Promise<BackupRow> {
    const { data, error, status } = await this.client
      .from(this.table)
      .insert({ ...row, status: 'in_progress' })
      .select('*')
      .single()
      .retry(false)
    if (error) throw this.failure('create the row', error, status)
    return data as BackupRow
  }

  async updateIfInProgress(id: string, patch: RowPatch, holder: Holder): Promise<BackupRow[]> {
    let update = this.client.from(this.table).update(patch).eq('id', id).eq('status', 'in_progress')
    update = holder.runId === null ? update.is('workflow_run_id', null) : update.eq('workflow_run_id', holder.runId)
    if (holder.claimedBy !== undefined)
      update = holder.claimedBy === null ? update.is('claimed_by', null) : update.eq('claimed_by', holder.claimedBy)
    const { data, error, status } = await update.select('*').retry(false)
    if (error) throw this.failure('update the row', error, status)
    return data as BackupRow[]
  }

  async expireIfSuccess(id: string): Promise<BackupRow[]> {
    // The database stamps expired_at with its own clock (migration 011); any non-null value asks for it.
    const { data, error, status } = await this.client
      .from(this.table)
      .update({ expired_at: new Date().toISOString() })
      .eq('id', id)
      .eq('status', 'success')
      .is('expired_at', null)
      .select('*')
      .retry(false)
    if (error) throw this.failure('mark the row expired', error, status)
    return data as BackupRow[]
  }

  async listSuccess(page: SuccessPage): Promise<BackupRow[]> {
    let query = this.client.from(this.table).select('*').eq('status', 'success').like('s3_key', prefixPattern(page.prefix))
    if (page.finishedNotAfter !== undefined) query = query.lte('finished_at', page.finishedNotAfter)
    const { data, error, status } = await query
      .order('finished_at', { ascending: false })
      .order('id', { ascending: false })
      .range(page.offset, page.offset + page.limit - 1)
      .retry(false)
    if (error) throw this.failure('list the success rows', error, status)
    return data as BackupRow[]
  }

  async listInProgress(limit: number): Promise<BackupRow[]> {
    const { data, error, status } = await this.client
      .from(this.table)
      .select('*')
      .eq('status', 'in_progress')
      .order('created_at', { ascending: true })
      .limit(limit)
      .retry(false)
    if (error) throw this.failure('list the in_progress rows', error, status)
    return data as BackupRow[]
  }

  /** Turns a PostgREST answer into an error a user can act on; transient ones are retried. */
  private failure(action: string, error: PostgrestFailure, status: number): LedgerError {
    const code = error.code ?? ''
    const what = `Could not ${action} in table '${this.table}'`
    if (status === 0 || status === 408 || status === 429 || status >= 500 || code.startsWith('PGRST00')) {
      const reason =
        status === 0 ? `no answer from the Supabase URL (${error.message})` : `HTTP ${status}${code ? ` ${code}` : ''}: ${error.message}`
      return new LedgerError(`${what}: ${reason}.`, true)
    }
    if (status === 401 && /legacy api keys are disabled/i.test(error.message)) {
      return new LedgerError(
        `${what}: Supabase refused 'supabase-key' because this project's legacy API keys (anon, service_role) are disabled. Use the project's secret key (sb_secret_..., Project Settings > API Keys), stored as a secret.`
      )
    }
    if (status === 401 && !code) {
      return new LedgerError(
        `${what}: Supabase rejected 'supabase-key' (${error.message}). Use the project's secret key (sb_secret_...) or its legacy service role key, stored as a secret.`
      )
    }
    if (code === 'PGRST301' || code === 'PGRST302' || code === 'PGRST303') {
      return new LedgerError(`${what}: 'supabase-key' is not a valid key for this project (${code}: ${error.message}).`)
    }
    if (code === '42501') {
      return new LedgerError(
        `${what}: the role of 'supabase-key' is not allowed to (${error.message}). Use the project's secret key (or the legacy service role key), or grant the role access and add an RLS policy (see supabase/migrations).`
      )
    }
    if (code === 'PGRST205' || code === '42P01') {
      return new LedgerError(`${what}: the table does not exist. Apply supabase/migrations or set 'table' to the right name.`)
    }
    if (code === '42703' || code === 'PGRST204') {
      return new LedgerError(`${what}: a column is missing (${error.message}). Apply every file of supabase/migrations.`)
    }
    return new LedgerError(`${what}: HTTP ${status}${code ? ` ${code}` : ''}: ${error.message}${error.hint ? ` (${error.hint})` : ''}`)
  }
}
