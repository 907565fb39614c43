// PostgreSQL clusters of a test's own (real Postgres from Debian's packages, as the services'),
// for a database to back up and another to restore into: each on its own port and data directory,
// removed when the test file ends.
import { execFileSync } from 'node:child_process'
import { chownSync } from 'node:fs'
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after } from 'node:test'
import pg from 'pg'
import { findPgBin, initCluster, pgRunning, pgStart, runPg, writeSettings } from '../../scripts/test-services/postgres.js'

export interface Cluster {
  port: number
  /** A connection string for `user` (default postgres, trusted) to `database` (default postgres). */
  url(options?: { user?: string; password?: string; database?: string; query?: string }): string
  /** Runs SQL as postgres on `database` (default postgres). */
  sql<T extends object = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<T[]>
  /** `pg_ctl stop`: fast (disconnects sessions cleanly) or immediate (as if the server went away). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  start(): Promise<void>
  running(): Promise<boolean>
  /** From now on `user` must give its password over TCP (scram-sha-256); everyone else stays trusted. */
  requirePassword(user: string): Promise<void>
}

/** A new cluster, started; stopped and deleted after the test file. */
export async function startCluster(name: string): Promise<Cluster> {
  const pgbin = findPgBin()
  if (!pgbin) throw new Error('PostgreSQL is not installed: run bash scripts/services.sh start once')
  const dir = await mkdtemp(path.join(os.tmpdir(), `cluster-${name}-`))
  if (process.getuid?.() === 0) chownSync(dir, ...postgresIds())
  const pgdata = path.join(dir, 'pgdata')
  const log = path.join(dir, 'postgres.log')
  await initCluster(pgbin, pgdata)
  const port = await freePort()
  await writeSettings(pgdata, { port, socketDir: dir })
  await pgStart(pgbin, pgdata, log)
  const pools = new Map<string, pg.Pool>()
  const pool = (database: string): pg.Pool => {
    let found = pools.get(database)
    if (!found) {
      found = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:${port}/${database}`, max: 2 })
      found.on('error', () => {})
      pools.set(database, found)
    }
    return found
  }
  after(async () => {
    await Promise.all([...pools.values()].map(p => p.end().catch(() => {})))
    if (await pgRunning(pgbin, pgdata)) await runPg(pgbin, 'pg_ctl', ['-D', pgdata, '-m', 'immediate', '-w', 'stop']).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })
  return {
    port,
    url: ({ user = 'postgres', password, database = 'postgres', query } = {}) =>
      `postgresql://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/${database}${query ? `?${query}` : ''}`,
    async sql<T extends object>(text: string, params: unknown[] = [], database = 'postgres') {
      return (await pool(database).query<T>(text, params)).rows
    },
    async stop(mode = 'fast') {
      await Promise.all([...pools.values()].map(p => p.end().catch(() => {})))
      pools.clear()
      await runPg(pgbin, 'pg_ctl', ['-D', pgdata, '-m', mode, '-w', '-t', '60', 'stop'])
    },
    start: () => pgStart(pgbin, pgdata, log),
    running: () => pgRunning(pgbin, pgdata),
    async requirePassword(user) {
      const hba = path.join(pgdata, 'pg_hba.conf')
      const current = await readFile(hba, 'utf8')
      await writeFile(hba, `host all ${user} 127.0.0.1/32 scram-sha-256\n${current}`)
      await appendFile(path.join(pgdata, 'services.conf'), "password_encryption = 'scram-sha-256'\n")
      await runPg(pgbin, 'pg_ctl', ['-D', pgdata, 'reload'])
    }
  }
}

function postgresIds(): [number, number] {
  return [Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString())]
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}
