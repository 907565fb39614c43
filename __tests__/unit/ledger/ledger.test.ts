// The row's state machine, against an in-memory backend that behaves like the conditional UPDATE.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LedgerError } from '../../../src/errors.js'
import {
  claimToken,
  Ledger,
  MAX_ERROR_TEXT,
  terminalPatch,
  toErrorText,
  type BackupRow,
  type Holder,
  type LedgerBackend,
  type RowPatch
} from '../../../src/ledger/ledger.js'
import { registerSecret } from '../../../src/runner/secrets.js'

class MemoryBackend implements LedgerBackend {
  readonly visibilityHint = 'that the test can see it'
  rows = new Map<string, BackupRow>()
  failNext = 0
  updates = 0
  /** Rows have claimed_by (migration 010). */
  constructor(private readonly withClaims = false) {}

  add(status: BackupRow['status'] = 'in_progress', dispatchId = 'd1'): BackupRow {
    const row: BackupRow = {
      id: `row-${this.rows.size + 1}`,
      dispatch_id: dispatchId,
      status,
      s3_key: null,
      size_bytes: null,
      workflow_run_id: null,
      error_text: status === 'failed' ? 'earlier failure' : null,
      created_at: new Date().toISOString(),
      finished_at: status === 'in_progress' ? null : new Date().toISOString(),
      ...(this.withClaims ? { claimed_by: null } : {})
    }
    this.rows.set(row.id, row)
    return row
  }
  private maybeFail(): void {
    if (this.failNext > 0) {
      this.failNext -= 1
      throw new LedgerError('database unreachable', true)
    }
  }
  async findByDispatchId(dispatchId: string, limit: number) {
    this.maybeFail()
    return [...this.rows.values()].filter(row => row.dispatch_id === dispatchId).slice(0, limit)
  }
  async getById(id: string) {
    this.maybeFail()
    return this.rows.get(id)
  }
  async insert(row: { dispatch_id: string; workflow_run_id: string }) {
    this.maybeFail()
    const created = this.add('in_progress', row.dispatch_id)
    created.workflow_run_id = row.workflow_run_id
    return created
  }
  async updateIfInProgress(id: string, patch: RowPatch, holder: Holder) {
    this.maybeFail()
    this.updates += 1
    const row = this.rows.get(id)
    if (!row || row.status !== 'in_progress' || row.workflow_run_id !== holder.runId) return []
    if (holder.claimedBy !== undefined && (row.claimed_by ?? null) !== holder.claimedBy) return []
    Object.assign(row, patch)
    return [row]
  }
  async expireIfSuccess(id: string) {
    this.maybeFail()
    this.updates += 1
    const row = this.rows.get(id)
    if (!row || row.status !== 'success' || row.expired_at) return []
    row.expired_at = new Date().toISOString()
    return [row]
  }
}

const FAST = { budgetMs: 2_000, initialDelayMs: 1, maxDelayMs: 5 }
const ledgerOn = (backend: MemoryBackend) => new Ledger(backend, 'backup_history', { runId: 'run-7' }, FAST)

describe('state machine', () => {
  it('moves in_progress to success with key, size, finish time, run id and no error', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    await ledgerOn(backend).claim(row)
    const result = await ledgerOn(backend).finalize(row.id, { status: 'success', s3Key: 'k.zip', sizeBytes: 10, sha256: 'a'.repeat(64) })
    assert.equal(result.written, true)
    assert.equal(result.row.status, 'success')
    assert.equal(result.row.s3_key, 'k.zip')
    assert.equal(result.row.size_bytes, 10)
    assert.equal(result.row.workflow_run_id, 'run-7')
    assert.equal(result.row.error_text, null)
    assert.ok(result.row.finished_at)
  })

  it('never modifies a terminal row', async () => {
    const backend = new MemoryBackend()
    const row = backend.add('success')
    const result = await ledgerOn(backend).finalize(row.id, { status: 'failed', errorText: 'late' })
    assert.equal(result.written, false)
    assert.equal(backend.rows.get(row.id)?.status, 'success')
  })

  it('refuses success without a key', () => {
    assert.throws(
      () => terminalPatch({ status: 'success', s3Key: ' ', sizeBytes: 1, sha256: 'a'.repeat(64) }, 'r', new Date()),
      /empty s3_key/
    )
  })

  it('retries while the database is unreachable, then writes once', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    await ledgerOn(backend).claim(row)
    backend.updates = 0
    backend.failNext = 3
    const result = await ledgerOn(backend).finalize(row.id, { status: 'failed', errorText: 'boom' })
    assert.equal(result.written, true)
    assert.equal(backend.updates, 1)
  })

  it('gives up after the retry budget with the transient error', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    await ledgerOn(backend).claim(row)
    backend.failNext = Number.POSITIVE_INFINITY
    const ledger = new Ledger(backend, 'backup_history', { runId: 'run-7' }, { budgetMs: 30, initialDelayMs: 5, maxDelayMs: 10 })
    await assert.rejects(ledger.finalize(row.id, { status: 'failed', errorText: 'boom' }), /unreachable/)
  })

  it('reports a row it can read but not update (RLS) instead of pretending', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    backend.updateIfInProgress = async () => []
    await assert.rejects(ledgerOn(backend).claim(row), /can read the row but not update it/)
    row.workflow_run_id = 'run-7'
    await assert.rejects(ledgerOn(backend).finalize(row.id, { status: 'failed', errorText: 'x' }), /can read the row but not update it/)
  })
})

describe('claiming the row', () => {
  it('of two runs claiming one row, exactly one wins; the other sees who holds it', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    const [first, second] = await Promise.all([
      ledgerOn(backend).claim(row),
      new Ledger(backend, 'backup_history', { runId: 'run-8' }, FAST).claim(row)
    ])
    assert.equal(first.claimed, true)
    assert.equal(second.claimed, false)
    assert.equal(second.row.workflow_run_id, 'run-7')
  })

  it('a row this run already holds is claimed again (a re-run attempt, a retried claim)', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    row.workflow_run_id = 'run-7'
    assert.equal((await ledgerOn(backend).claim(row)).claimed, true)
  })

  it("never finalizes another run's row", async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    row.workflow_run_id = 'run-8'
    const result = await ledgerOn(backend).finalize(row.id, { status: 'failed', errorText: 'loser' })
    assert.equal(result.written, false)
    assert.equal(backend.rows.get(row.id)?.status, 'in_progress')
  })

  it('the sweep fails a row only while the run it checked still holds it', async () => {
    const backend = new MemoryBackend()
    const row = backend.add()
    row.workflow_run_id = 'run-8'
    const stale = { ...row }
    row.workflow_run_id = 'run-9'
    assert.equal((await ledgerOn(backend).failAbandoned(stale, 'run 8 ended')).written, false)
    const result = await ledgerOn(backend).failAbandoned({ ...row }, 'run 9 ended')
    assert.equal(result.written, true)
    assert.equal(result.row.workflow_run_id, 'run-9', 'keeps the run that abandoned it')
    const unclaimed = backend.add()
    assert.equal((await ledgerOn(backend).failAbandoned(unclaimed, 'abandoned')).row.workflow_run_id, 'run-7')
  })
})

describe('jobs of one run (claimed_by, migration 010)', () => {
  const on = (backend: MemoryBackend, runId: string, attempt: string, nonce: string) =>
    new Ledger(backend, 'backup_history', { runId, claimToken: claimToken(runId, attempt, 'backup', nonce) }, FAST)

  it('of two legs of one matrix claiming one row, one wins and the other is told another job holds it', async () => {
    const backend = new MemoryBackend(true)
    const row = backend.add()
    const [first, second] = await Promise.all([on(backend, '70', '1', 'aaaa').claim(row), on(backend, '70', '1', 'bbbb').claim({ ...row })])
    assert.equal(first.claimed, true)
    assert.equal(second.claimed, false)
    assert.equal(!second.claimed && second.heldBy, 'another-job')
    assert.equal(backend.rows.get(row.id)?.claimed_by, '70/1/backup/aaaa')
  })

  it('the losing leg can neither finalize nor fail the row', async () => {
    const backend = new MemoryBackend(true)
    const row = backend.add()
    await on(backend, '70', '1', 'aaaa').claim(row)
    const loser = await on(backend, '70', '1', 'bbbb').finalize(row.id, { status: 'failed', errorText: 'leg b' })
    assert.equal(loser.written, false)
    assert.equal(backend.rows.get(row.id)?.status, 'in_progress')
    const winner = await on(backend, '70', '1', 'aaaa').finalize(row.id, { status: 'failed', errorText: 'leg a' })
    assert.equal(winner.written, true, 'a new process of the winning job (post) writes with the saved token')
  })

  it('a later attempt of the run takes the row over from an earlier one', async () => {
    const backend = new MemoryBackend(true)
    const row = backend.add()
    await on(backend, '70', '1', 'aaaa').claim(row)
    const again = await on(backend, '70', '2', 'cccc').claim({ ...row })
    assert.equal(again.claimed, true)
    assert.equal(backend.rows.get(row.id)?.claimed_by, '70/2/backup/cccc')
    const stale = await on(backend, '70', '1', 'dddd').claim({ ...row })
    assert.equal(stale.claimed, false, 'an earlier attempt never takes it back')
  })

  it('a row trigger-backup stamped with the run id is claimed by a job of that run, not of another', async () => {
    const backend = new MemoryBackend(true)
    const row = backend.add()
    row.workflow_run_id = '70'
    assert.equal((await on(backend, '71', '1', 'eeee').claim({ ...row })).claimed, false)
    assert.equal((await on(backend, '70', '1', 'aaaa').claim({ ...row })).claimed, true)
  })

  it('a table without claimed_by falls back to the run id alone', async () => {
    const backend = new MemoryBackend(false)
    const row = backend.add()
    assert.equal((await on(backend, '70', '1', 'aaaa').claim(row)).claimed, true)
    assert.equal('claimed_by' in (backend.rows.get(row.id) ?? {}), false)
    assert.equal((await on(backend, '70', '1', 'bbbb').finalize(row.id, { status: 'failed', errorText: 'x' })).written, true)
  })

  it('claim tokens keep their four parts even when the job name has a slash', () => {
    assert.equal(claimToken('70', '1', 'a/b', 'n'), '70/1/a_b/n')
  })
})

describe('locating the row', () => {
  it('finds exactly one row', async () => {
    const backend = new MemoryBackend()
    const row = backend.add('in_progress', 'abc')
    assert.equal((await ledgerOn(backend).locate('abc')).id, row.id)
  })
  it('refuses none, naming the dispatch id', async () => {
    await assert.rejects(ledgerOn(new MemoryBackend()).locate('abc'), /No backup_history row has dispatch_id abc/)
  })
  it('refuses two, naming the dispatch id', async () => {
    const backend = new MemoryBackend()
    backend.add('in_progress', 'abc')
    backend.add('in_progress', 'abc')
    await assert.rejects(ledgerOn(backend).locate('abc'), /More than one backup_history row has dispatch_id abc/)
  })
})

describe('error_text', () => {
  it('is scrubbed of secrets and JWTs and capped at 1000 characters', () => {
    registerSecret('hunter2-secret')
    const text = toErrorText(
      `failed with hunter2-secret and eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.abcdefghijklmnop ${'x'.repeat(2000)}`
    )
    assert.doesNotMatch(text, /hunter2-secret|eyJhbGci/)
    assert.equal(text.length, MAX_ERROR_TEXT)
  })
})

describe('markExpired: the one change a finished row takes', () => {
  it('marks a success row once; a second mark, or a failed row, changes nothing', async () => {
    const backend = new MemoryBackend()
    const ledger = ledgerOn(backend)
    const success = { ...backend.add('success'), expired_at: null }
    backend.rows.set(success.id, success)
    const first = await ledger.markExpired(success)
    assert.equal(first.expired, true)
    assert.ok(first.row.expired_at)
    const again = await ledger.markExpired(success)
    assert.equal(again.expired, false)
    assert.equal(again.row.expired_at, first.row.expired_at)
    const failed = { ...backend.add('failed'), expired_at: null }
    backend.rows.set(failed.id, failed)
    const refused = await ledger.markExpired(failed)
    assert.equal(refused.expired, false)
    assert.equal(refused.row.expired_at, null)
  })

  it('refuses a table without expired_at before writing, naming migration 011', async () => {
    const backend = new MemoryBackend()
    const row = backend.add('success')
    await assert.rejects(ledgerOn(backend).markExpired(row), /011_add_expired_at_to_backup_history/)
    assert.equal(backend.updates, 0)
  })
})
