// Upgrading a database that already has rows from an earlier setup: 008 backfills finished_at
// for finished rows, refuses rows that break the state machine's rules (so the README's query
// finds them first), 009's sha256 arrives only with the move to success, 010 stamps finished_at
// with the database's clock and adds claimed_by, 011 lets a success row take expired_at and nothing
// else, and every migration can be applied twice.
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, it } from 'node:test'
import pg from 'pg'
import { ACTION_DIR } from '../harness/backup-job.js'
import { services } from '../harness/services.js'

const svc = await services()
const database = `migrations_${process.pid}`
await svc.sql(`create database ${database}`)
const url = new URL(svc.env.DATABASE_URL)
url.pathname = `/${database}`
const db = new pg.Client({ connectionString: url.toString() })
await db.connect()
after(async () => {
  await db.end()
  await svc.sql(`drop database ${database}`)
  await svc.end()
})

const dir = path.join(ACTION_DIR, 'supabase', 'migrations')
const [first, second, third, fourth, fifth] = (await readdir(dir)).filter(name => name.endsWith('.sql')).sort()
const apply = async (name: string | undefined) => db.query(await readFile(path.join(dir, name ?? ''), 'utf8'))

it('008 gives rows finished before it a finish time, and applying both twice changes nothing', async () => {
  await apply(first)
  await db.query(`insert into backup_history (dispatch_id, status, s3_key, size_bytes, created_at)
                  values (gen_random_uuid(), 'success', 'backups/old.zip', 10, '2024-01-15T10:00:00Z')`)
  await db.query(`insert into backup_history (dispatch_id, status, error_text) values (gen_random_uuid(), 'failed', 'old failure')`)
  await db.query(`insert into backup_history (dispatch_id) values (gen_random_uuid())`)
  await apply(second)
  const rows = await db.query<{ status: string; finished: boolean; backfilled: boolean }>(
    `select status, finished_at is not null as finished, finished_at = created_at as backfilled from backup_history order by status`
  )
  assert.deepEqual(rows.rows, [
    { status: 'failed', finished: true, backfilled: true },
    { status: 'in_progress', finished: false, backfilled: null },
    { status: 'success', finished: true, backfilled: true }
  ])
  await apply(first)
  await apply(second)
  assert.equal((await db.query('select count(*)::int as n from backup_history')).rows[0].n, 3)
})

it("a row that breaks the rules (success without s3_key, the seeds' bug) stops 008 until it is fixed", async () => {
  await db.query('drop table backup_history cascade')
  await apply(first)
  await db.query(`insert into backup_history (dispatch_id, status) values (gen_random_uuid(), 'success')`)
  await assert.rejects(apply(second), /backup_history_terminal_fields_check/)
  await db.query('rollback').catch(() => {})
  await db.query(
    `update backup_history set status = 'failed', error_text = 'Recorded as success without an s3_key.' where coalesce(s3_key, '') = ''`
  )
  await apply(second)
})

it('009: sha256 is 64 lowercase hex digits, set only by the move to success, and never changed after', async () => {
  await db.query('drop table backup_history cascade')
  await apply(first)
  await apply(second)
  await db.query(`insert into backup_history (dispatch_id, status, s3_key, size_bytes, finished_at)
                  values (gen_random_uuid(), 'success', 'backups/before-009.zip', 10, now())`)
  await apply(third)
  await apply(third)
  const insert = async () =>
    (await db.query<{ id: string }>(`insert into backup_history (dispatch_id) values (gen_random_uuid()) returning id`)).rows[0]?.id
  const succeed = (id: string | undefined, sha256: string) =>
    db.query(
      `update backup_history set status = 'success', s3_key = 'k.zip', size_bytes = 1, finished_at = now(), sha256 = $2 where id = $1`,
      [id, sha256]
    )
  const hash = 'ab'.repeat(32)

  const id = await insert()
  await assert.rejects(
    db.query(`update backup_history set sha256 = $2 where id = $1`, [id, hash]),
    /only set when the row moves to success/
  )
  await assert.rejects(
    db.query(`update backup_history set status = 'failed', error_text = 'x', finished_at = now(), sha256 = $2 where id = $1`, [id, hash]),
    /only set when the row moves to success/
  )
  await assert.rejects(succeed(id, hash.toUpperCase()), /backup_history_sha256_check/)
  await assert.rejects(succeed(id, hash.slice(1)), /backup_history_sha256_check/)
  await succeed(id, hash)
  await assert.rejects(db.query(`update backup_history set sha256 = $2 where id = $1`, [id, 'cd'.repeat(32)]), /already success/)
  await assert.rejects(
    db.query(`insert into backup_history (dispatch_id, sha256) values (gen_random_uuid(), $1)`, [hash]),
    /backup_history_sha256_check/
  )
  const rows = await db.query<{ sha256: string | null }>('select sha256 from backup_history order by s3_key')
  assert.deepEqual(
    rows.rows.map(row => row.sha256),
    [null, hash]
  )
})

it("010: the database's clock stamps finished_at, whatever a writer sends, and claimed_by is kept short", async () => {
  await db.query('drop table backup_history cascade')
  for (const name of [first, second, third, fourth, fourth]) await apply(name)
  const insert = async () =>
    (await db.query<{ id: string }>(`insert into backup_history (dispatch_id) values (gen_random_uuid()) returning id`)).rows[0]?.id
  const id = await insert()
  await db.query(`update backup_history set workflow_run_id = '70', claimed_by = '70/1/backup/ab12cd34' where id = $1`, [id])
  // A runner whose clock is a day behind.
  await db.query(`update backup_history set status = 'failed', error_text = 'x', finished_at = now() - interval '1 day' where id = $1`, [
    id
  ])
  const [row] = (
    await db.query<{ stamped_now: boolean; claimed_by: string }>(
      `select finished_at > now() - interval '1 minute' as stamped_now, claimed_by from backup_history where id = $1`,
      [id]
    )
  ).rows
  assert.deepEqual(row, { stamped_now: true, claimed_by: '70/1/backup/ab12cd34' })
  await assert.rejects(
    db.query(`update backup_history set claimed_by = $2 where id = $1`, [await insert(), 'x'.repeat(201)]),
    /backup_history_claimed_by_check/
  )
})

it('011: a success row takes expired_at once, stamped by the database, and no other change; nothing else takes it', async () => {
  await db.query('drop table backup_history cascade')
  for (const name of [first, second, third, fourth, fifth, fourth, fifth]) await apply(name)
  const insert = async (status: string) =>
    (
      await db.query<{ id: string }>(
        `insert into backup_history (dispatch_id, status, s3_key, size_bytes, error_text, finished_at)
         values (gen_random_uuid(), $1, case when $1 = 'success' then 'backups/a.zip' end, case when $1 = 'success' then 1 end,
                 case when $1 = 'failed' then 'it failed' end, case when $1 <> 'in_progress' then now() end) returning id`,
        [status]
      )
    ).rows[0]?.id
  const success = await insert('success')
  // Another column with it, or instead of it: refused.
  await assert.rejects(
    db.query(`update backup_history set expired_at = now(), s3_key = 'backups/b.zip' where id = $1`, [success]),
    /already success, it cannot change \(but for expired_at being set, alone\)/
  )
  await assert.rejects(db.query(`update backup_history set size_bytes = 2 where id = $1`, [success]), /already success/)
  // A writer's clock a day behind: the database's is used.
  await db.query(`update backup_history set expired_at = now() - interval '1 day' where id = $1`, [success])
  const [row] = (
    await db.query<{ stamped_now: boolean; s3_key: string; status: string }>(
      `select expired_at > now() - interval '1 minute' as stamped_now, s3_key, status from backup_history where id = $1`,
      [success]
    )
  ).rows
  assert.deepEqual(row, { stamped_now: true, s3_key: 'backups/a.zip', status: 'success' })
  // Once: never set again, never unset.
  await assert.rejects(db.query(`update backup_history set expired_at = now() where id = $1`, [success]), /already success/)
  await assert.rejects(db.query(`update backup_history set expired_at = null where id = $1`, [success]), /already success/)
  // Never on a failed row, nor on an in_progress one, nor with the move to success.
  await assert.rejects(db.query(`update backup_history set expired_at = now() where id = $1`, [await insert('failed')]), /already failed/)
  const running = await insert('in_progress')
  await assert.rejects(
    db.query(`update backup_history set status = 'success', s3_key = 'k', size_bytes = 1, expired_at = now() where id = $1`, [running]),
    /expired_at is only set on a success row/
  )
  await assert.rejects(
    db.query(`insert into backup_history (dispatch_id, expired_at) values (gen_random_uuid(), now())`),
    /backup_history_expired_at_check/
  )
  // 010's rules still hold: finished_at is the database's on the move to a terminal status.
  await db.query(`update backup_history set status = 'failed', error_text = 'x', finished_at = now() - interval '1 day' where id = $1`, [
    running
  ])
  const [stamped] = (
    await db.query<{ ok: boolean }>(`select finished_at > now() - interval '1 minute' as ok from backup_history where id = $1`, [running])
  ).rows
  assert.deepEqual(stamped, { ok: true })
})
