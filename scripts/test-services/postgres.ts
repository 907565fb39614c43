// Throwaway PostgreSQL cluster helpers (used by cli.ts and by the test harness to stop/start
// Postgres mid-test). initdb/pg_ctl refuse to run as root, so as root they go through runuser.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, realpathSync } from 'node:fs'
import { writeFile, appendFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

const isRoot = (): boolean => process.getuid?.() === 0

/** Run a Postgres binary as the postgres OS user (directly when we are not root). */
export async function runPg(pgbin: string, tool: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  const bin = path.join(pgbin, tool)
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]
  return execFileP(cmd, argv, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
}

/** The directory holding pg_ctl and initdb, or undefined if Postgres is not installed. */
export function findPgBin(): string | undefined {
  // Prefer the versioned Debian layout (newest version first), then PATH (resolving symlinks).
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter(v => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) {
      const dir = path.join(root, v, 'bin')
      if (existsSync(path.join(dir, 'pg_ctl')) && existsSync(path.join(dir, 'initdb'))) return dir
    }
  }
  for (const dir of (process.env['PATH'] ?? '').split(':').filter(Boolean)) {
    const ctl = path.join(dir, 'pg_ctl')
    if (existsSync(ctl) && existsSync(path.join(dir, 'initdb'))) return path.dirname(realpathSync(ctl))
  }
  return undefined
}

export interface ClusterSettings {
  port: number
  socketDir: string
}

/** initdb with trust auth (loopback only), then our settings in an included file. */
export async function initCluster(pgbin: string, pgdata: string): Promise<void> {
  await runPg(
    pgbin,
    'initdb',
    ['-D', pgdata, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'],
    120_000
  )
  await appendFile(path.join(pgdata, 'postgresql.conf'), "\ninclude_if_exists = 'services.conf'\n")
}

/** (Re)write the settings file: loopback only, fast and unsafe (throwaway data), UTC like Supabase. */
export async function writeSettings(pgdata: string, s: ClusterSettings): Promise<void> {
  const conf = [
    "listen_addresses = '127.0.0.1'",
    `port = ${s.port}`,
    `unix_socket_directories = '${s.socketDir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    "timezone = 'UTC'",
    'max_connections = 60',
    ''
  ].join('\n')
  await writeFile(path.join(pgdata, 'services.conf'), conf)
}

export async function pgStart(pgbin: string, pgdata: string, logFile: string): Promise<void> {
  await runPg(pgbin, 'pg_ctl', ['-D', pgdata, '-l', logFile, '-w', '-t', '60', 'start'])
}

export async function pgStop(pgbin: string, pgdata: string): Promise<void> {
  await runPg(pgbin, 'pg_ctl', ['-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop'])
}

export async function pgRunning(pgbin: string, pgdata: string): Promise<boolean> {
  try {
    await runPg(pgbin, 'pg_ctl', ['-D', pgdata, 'status'])
    return true
  } catch {
    return false // pg_ctl status exits 3 when not running, 4 when there is no data dir
  }
}
