// Holding a database dump at a known point: a table locked by another session makes pg_dump wait
// for it with its snapshot taken, so a test can stop the dump, or write to the database, at a
// moment that is certain rather than a race with a fast dump.
import { readFileSync } from 'node:fs'
import pg from 'pg'
import type { Cluster } from './clusters.js'

/** The state key where main saves the dump's pids. */
export const DUMP_PIDS = 'SUPABASE_S3_BACKUP_DUMP_PIDS'

/** Locks `table` (ACCESS EXCLUSIVE) in an open transaction; the function returned releases it. */
export async function lockTable(cluster: Cluster, table: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: cluster.url() })
  client.on('error', () => {})
  await client.connect()
  await client.query('BEGIN')
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
  return async () => {
    await client.query('ROLLBACK').catch(() => {})
    await client.end().catch(() => {})
  }
}

/** True once one of the dump's `pids` is pg_dump of the schema: the part that waits on a locked table. */
export function dumpingTheSchema(pids: string): boolean {
  return pids.split(' ').some(pid => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--schema-only')
    } catch {
      return false
    }
  })
}
