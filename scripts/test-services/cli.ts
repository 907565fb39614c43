// `bash scripts/services.sh start [--lanes N]|stop|status`: the local test services.
//   start  N lanes (default 1), started side by side. Each is Postgres (real, a throwaway
//          cluster) + one detached daemon hosting the PostgREST stand-in, its edge functions
//          and the patched s3rver; writes .services/lane-<n>/env.json, and lane 1's as
//          .services/env.json and .services/env.sh.
//   stop   kills everything and deletes all data; safe on a half-started run.
//   status exit 0 if every lane answers.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { ENV_JSON, ENV_SH, REPO_ROOT, SERVICES_DIR, functionPidsFile, laneDir, laneEnvJson, laneStateJson } from './config.js'
import type { DaemonConfig, DaemonReady, ServicesEnv, ServicesState } from './config.js'
import type { ProjectKeys } from './gateway.js'
import { newSigningKey, supabaseKey } from './jwt.js'
import { findPgBin, initCluster, pgRunning, pgStart, pgStop, writeSettings } from './postgres.js'

const STATE_PREFIX = 'supabase-s3-services-'
const BUCKET = 'backups'

const log = (msg: string): void => console.log(`[services] ${msg}`)

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

function writeState(lane: number, state: ServicesState): void {
  mkdirSync(laneDir(lane), { recursive: true })
  writeFileSync(laneStateJson(lane), JSON.stringify(state, null, 2))
}

/** The lanes a previous start left, by number, from the lane-<n> folders. */
function existingLanes(): number[] {
  if (!existsSync(SERVICES_DIR)) return []
  return readdirSync(SERVICES_DIR)
    .map(name => /^lane-(\d+)$/.exec(name)?.[1])
    .filter((lane): lane is string => lane !== undefined)
    .map(Number)
    .sort((a, b) => a - b)
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Only signal a pid that is still ours (pids get reused): its command line names `marker`. */
function isOurs(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)
  } catch {
    return false
  }
}

const DAEMON_MARKER = 'scripts/test-services/daemon.ts'
const FUNCTION_MARKER = 'supabase/functions/'

function ensurePostgres(): string {
  const found = findPgBin()
  if (found) return found
  log('PostgreSQL not found: installing it with apt-get (one time)')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { stdio: 'inherit', env })
  const bin = findPgBin()
  if (!bin) throw new Error('postgresql installed but pg_ctl/initdb still not found')
  return bin
}

async function httpOk(
  url: string,
  headers: Record<string, string> = {},
  expect: (status: number) => boolean = s => s === 200
): Promise<boolean> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(3000) })
    await res.arrayBuffer()
    return expect(res.status)
  } catch {
    return false
  }
}

/** The function is up when it refuses a request without the API key (401 from the function itself). */
async function functionAnswers(env: ServicesEnv): Promise<boolean> {
  try {
    const res = await fetch(`${env.SUPABASE_URL}/functions/v1/update-backup`, { method: 'POST', signal: AbortSignal.timeout(3000) })
    const body = (await res.json()) as { code?: string }
    return res.status === 401 && body.code === 'invalid_api_key'
  } catch {
    return false
  }
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function applySql(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const applied: string[] = []
  try {
    const migrationsDir = path.join(REPO_ROOT, 'supabase', 'migrations')
    const files = [
      path.join(REPO_ROOT, 'scripts', 'test-services', 'supabase-base.sql'),
      ...(existsSync(migrationsDir)
        ? readdirSync(migrationsDir)
            .filter(f => f.endsWith('.sql'))
            .sort()
            .map(f => path.join(migrationsDir, f))
        : [])
    ]
    for (const file of files) {
      // One transaction per file: a broken migration leaves nothing half-applied.
      await client.query('BEGIN')
      try {
        await client.query(readFileSync(file, 'utf8'))
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw new Error(`applying ${path.relative(REPO_ROOT, file)} failed: ${(err as Error).message}`)
      }
      applied.push(path.relative(REPO_ROOT, file))
    }
  } finally {
    await client.end()
  }
  return applied
}

async function healthy(env: ServicesEnv): Promise<{ ok: boolean; problems: string[] }> {
  const problems: string[] = []
  const pid = Number(env.SERVICES_PID)
  if (!alive(pid) || !isOurs(pid, DAEMON_MARKER)) problems.push(`daemon ${pid} is not running`)
  if (!(await pgRunning(env.PGBIN, env.PGDATA))) problems.push('postgres is not running')
  if (!(await httpOk(`${env.SUPABASE_URL}/rest/v1/`, { apikey: env.SUPABASE_ANON_KEY }))) problems.push('REST stand-in does not answer')
  if (!(await httpOk(`${env.S3_ENDPOINT}/__control/stats`))) problems.push('S3 server does not answer')
  if (!(await functionAnswers(env))) problems.push('the update-backup function does not answer')
  return { ok: problems.length === 0, problems }
}

function summary(env: ServicesEnv, lanes: number): string {
  return [
    `  Postgres   ${env.DATABASE_URL}   (PGDATA ${env.PGDATA})`,
    `  Supabase   ${env.SUPABASE_URL}/rest/v1   (PostgREST stand-in)`,
    `  Functions  ${env.SUPABASE_URL}/functions/v1/update-backup   (Deno, supabase/functions)`,
    `  S3         ${env.S3_ENDPOINT}   bucket "${env.S3_BUCKET}"   (patched s3rver, data ${env.S3_DIR})`,
    `  daemon pid ${env.SERVICES_PID}, logs ${env.SERVICES_LOG}`,
    `  env        ${path.relative(process.cwd(), ENV_JSON) || ENV_JSON}, ${path.relative(process.cwd(), ENV_SH) || ENV_SH} (source it)`,
    ...(lanes > 1 ? [`  lanes      ${lanes}: each its own set of the above, in .services/lane-<n>/env.json`] : [])
  ].join('\n')
}

async function start(lanes: number): Promise<number> {
  const running = existingLanes()
  if (running.length === lanes) {
    const checks = await Promise.all(running.map(async lane => ({ lane, env: readJson<ServicesEnv>(laneEnvJson(lane)) })))
    const problems: string[] = []
    for (const { lane, env } of checks) {
      if (!env) problems.push(`lane ${lane} has no env.json`)
      else problems.push(...(await healthy(env)).problems.map(problem => `lane ${lane}: ${problem}`))
    }
    const first = checks[0]?.env
    if (problems.length === 0 && first) {
      log('already running')
      console.log(summary(first, lanes))
      return 0
    }
    log(`previous run is broken (${problems.join('; ')}): cleaning it up`)
  }
  if (existsSync(SERVICES_DIR)) await stop(true)

  const t0 = Date.now()
  const pgbin = ensurePostgres()
  try {
    const started = await Promise.all(Array.from({ length: lanes }, (_, index) => startLane(index + 1, pgbin)))
    const first = started[0] as { env: ServicesEnv; applied: string[] }
    copyFileSync(laneEnvJson(1), ENV_JSON)
    copyFileSync(path.join(laneDir(1), 'env.sh'), ENV_SH)
    log(`started ${lanes === 1 ? '' : `${lanes} lanes `}in ${((Date.now() - t0) / 1000).toFixed(1)}s (applied ${first.applied.join(', ')})`)
    console.log(summary(first.env, lanes))
    return 0
  } catch (err) {
    console.error(`[services] start failed: ${(err as Error).message}`)
    await stop(true)
    return 1
  }
}

/** One lane: its cluster, its daemon (REST stand-in, functions, S3), and its env files. Throws on failure; the caller stops every lane. */
async function startLane(lane: number, pgbin: string): Promise<{ env: ServicesEnv; applied: string[] }> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), STATE_PREFIX))
  const state: ServicesState = { stateDir }
  writeState(lane, state)
  // Postgres: a throwaway cluster owned by the postgres OS user.
  chownSync(stateDir, ...postgresIds())
  const pgdata = path.join(stateDir, 'pgdata')
  state.pgdata = pgdata
  state.pgbin = pgbin
  writeState(lane, state)
  await initCluster(pgbin, pgdata)
  const pgLog = path.join(stateDir, 'postgres.log')
  let port = 0
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    await writeSettings(pgdata, { port, socketDir: stateDir })
    try {
      await pgStart(pgbin, pgdata, pgLog)
      break
    } catch (err) {
      // Lost a free-port race (or similar): try another port a couple of times.
      if (attempt >= 3) throw new Error(`pg_ctl start failed: ${(err as Error).message}\n${tail(pgLog)}`)
    }
  }
  const databaseUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`
  const applied = await applySql(databaseUrl)

  // Secrets for this run only: the project's keys in every form Supabase has had them (gateway.ts).
  const jwtSecret = randomBytes(32).toString('hex')
  const signingKeys = [newSigningKey('ES256'), newSigningKey('RS256')]
  const keys: ProjectKeys = {
    jwtSecret,
    anonKey: supabaseKey('anon', jwtSecret),
    serviceRoleKey: supabaseKey('service_role', jwtSecret),
    publishableKey: `sb_publishable_${randomBytes(16).toString('base64url')}`,
    secretKey: `sb_secret_${randomBytes(16).toString('base64url')}`,
    signingKeys: signingKeys.map(key => key.publicJwk)
  }
  const backupApiKey = randomBytes(32).toString('hex')
  const s3AccessKeyId = 'AKIA' + randomBytes(8).toString('hex').toUpperCase()
  const s3SecretAccessKey = randomBytes(30).toString('base64')
  const s3Dir = path.join(stateDir, 's3')
  mkdirSync(s3Dir, { recursive: true })

  // The daemon: REST stand-in + S3, detached, logging into the state dir.
  const daemonLog = path.join(stateDir, 'daemon.log')
  const readyFile = path.join(stateDir, 'daemon-ready.json')
  const configFile = path.join(stateDir, 'daemon-config.json')
  const config: DaemonConfig = {
    databaseUrl: `postgresql://authenticator@127.0.0.1:${port}/postgres`,
    keys,
    backupApiKey,
    s3Dir,
    s3AccessKeyId,
    s3SecretAccessKey,
    buckets: [BUCKET],
    readyFile
  }
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 })
  const fd = openSync(daemonLog, 'a')
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts', 'test-services', 'daemon.ts'), configFile], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', fd, fd]
  })
  closeSync(fd)
  if (child.pid === undefined) throw new Error('could not spawn the services daemon')
  child.unref()
  state.daemonPid = child.pid
  writeState(lane, state)

  await waitFor(
    'the services daemon',
    () => {
      if (!alive(child.pid ?? 0)) throw new Error(`the services daemon exited:\n${tail(daemonLog)}`)
      return existsSync(readyFile)
    },
    30_000
  )
  const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as DaemonReady

  const env: ServicesEnv = {
    SUPABASE_URL: `http://127.0.0.1:${ready.restPort}`,
    SUPABASE_ANON_KEY: keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    SUPABASE_PUBLISHABLE_KEY: keys.publishableKey,
    SUPABASE_SECRET_KEY: keys.secretKey,
    SUPABASE_JWKS: JSON.stringify({ keys: keys.signingKeys }),
    SIGNING_KEYS: JSON.stringify(signingKeys),
    BACKUP_API_KEY: backupApiKey,
    JWT_SECRET: jwtSecret,
    DATABASE_URL: databaseUrl,
    PGDATA: pgdata,
    PGBIN: pgbin,
    PGPORT: String(port),
    PGHOST: '127.0.0.1',
    PGLOG: pgLog,
    S3_ENDPOINT: `http://127.0.0.1:${ready.s3Port}`,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: s3AccessKeyId,
    S3_SECRET_ACCESS_KEY: s3SecretAccessKey,
    S3_BUCKET: BUCKET,
    S3_DIR: s3Dir,
    SERVICES_PID: String(ready.pid),
    SERVICES_STATE_DIR: stateDir,
    SERVICES_LOG: daemonLog
  }

  // All three answer: the REST probe hits Postgres as `authenticator` (schema lookup → 404).
  await waitFor(
    'the REST stand-in',
    () => httpOk(`${env.SUPABASE_URL}/rest/v1/__services_probe`, { apikey: keys.serviceRoleKey }, s => s === 404),
    10_000
  )
  await waitFor('the S3 server', () => httpOk(`${env.S3_ENDPOINT}/__control/stats`), 10_000)
  await waitFor('the update-backup function', () => functionAnswers(env), 10_000)

  writeFileSync(laneEnvJson(lane), JSON.stringify(env, null, 2) + '\n')
  const shQuote = (v: string): string => `'${v.replaceAll("'", `'\\''`)}'`
  writeFileSync(
    path.join(laneDir(lane), 'env.sh'),
    Object.entries(env)
      .map(([k, v]) => `export ${k}=${shQuote(v)}`)
      .join('\n') + '\n'
  )
  return { env, applied }
}

function postgresIds(): [number, number] {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
  return [uid, gid]
}

/** A file's text, or '' when it does not exist (yet). */
function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

function tail(file: string, lines = 20): string {
  return readText(file).trimEnd().split('\n').slice(-lines).join('\n')
}

async function stop(quiet = false): Promise<number> {
  await Promise.all(existingLanes().map(lane => stopLane(lane, quiet)))
  rmSync(SERVICES_DIR, { recursive: true, force: true })
  if (!quiet) log('stopped')
  return 0
}

async function stopLane(lane: number, quiet: boolean): Promise<void> {
  const state = readJson<ServicesState>(laneStateJson(lane))
  const env = readJson<ServicesEnv>(laneEnvJson(lane))
  const pid = state?.daemonPid ?? (env ? Number(env.SERVICES_PID) : undefined)
  const pgdata = state?.pgdata ?? env?.PGDATA
  const pgbin = state?.pgbin ?? env?.PGBIN
  const stateDir = state?.stateDir ?? env?.SERVICES_STATE_DIR

  if (pid && alive(pid) && isOurs(pid, DAEMON_MARKER)) {
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 60 && alive(pid); i++) await sleep(50)
    if (alive(pid)) process.kill(pid, 'SIGKILL')
  }
  // The daemon stops its functions; any still running are left from a daemon that died first.
  for (const fnPid of stateDir ? readText(functionPidsFile(stateDir)).split('\n').filter(Boolean).map(Number) : []) {
    if (alive(fnPid) && isOurs(fnPid, FUNCTION_MARKER)) process.kill(fnPid, 'SIGKILL')
  }
  if (pgbin && pgdata && existsSync(path.join(pgdata, 'postmaster.pid'))) {
    try {
      await pgStop(pgbin, pgdata)
    } catch (err) {
      // pg_ctl failed: make sure the postmaster is gone before deleting its data dir.
      const pmPid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0])
      if (pmPid && alive(pmPid)) process.kill(pmPid, 'SIGKILL')
      if (!quiet) console.error(`[services] lane ${lane}: pg_ctl stop failed (${(err as Error).message.split('\n')[0]}); killed ${pmPid}`)
    }
  }
  // Only ever delete what start created: a mkdtemp dir with our prefix under the temp dir.
  if (stateDir && path.dirname(stateDir) === os.tmpdir() && path.basename(stateDir).startsWith(STATE_PREFIX)) {
    rmSync(stateDir, { recursive: true, force: true })
  }
}

async function status(): Promise<number> {
  const lanes = existingLanes()
  const first = readJson<ServicesEnv>(laneEnvJson(1))
  if (!first) {
    log('not running (no .services/lane-1/env.json)')
    return 1
  }
  const problems: string[] = []
  for (const lane of lanes) {
    const env = readJson<ServicesEnv>(laneEnvJson(lane))
    if (!env) problems.push(`lane ${lane} has no env.json`)
    else problems.push(...(await healthy(env)).problems.map(problem => `lane ${lane}: ${problem}`))
  }
  if (problems.length > 0) {
    log(`not healthy: ${problems.join('; ')}`)
    return 1
  }
  log('running')
  console.log(summary(first, lanes.length))
  return 0
}

/** `--lanes N` of `start`: how many independent sets of services (1 to 8). */
function lanesArgument(args: string[]): number | undefined {
  const at = args.indexOf('--lanes')
  if (at < 0) return 1
  const lanes = Number(args[at + 1])
  return Number.isInteger(lanes) && lanes >= 1 && lanes <= 8 ? lanes : undefined
}

const [command, ...args] = process.argv.slice(2)
const lanes = lanesArgument(args)
const commands: Record<string, () => Promise<number>> = { start: () => start(lanes ?? 1), stop: () => stop(false), status }
const run = command && lanes !== undefined ? commands[command] : undefined
if (!run) {
  console.error('usage: bash scripts/services.sh start [--lanes 1-8]|stop|status')
  process.exit(2)
}
process.exit(await run())
