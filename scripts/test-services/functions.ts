// Supabase Edge Functions as Supabase runs them: supabase/functions/<name>/index.ts calls
// `Deno.serve`, here under the Deno binary the `deno` npm package ships. DENO_SERVE_ADDRESS picks
// a free loopback port without touching the function's code; the REST stand-in routes
// /functions/v1/<name> to it, as Supabase's gateway does.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { REPO_ROOT } from './config.js'

const require = createRequire(import.meta.url)

/** Environment the functions may read (Deno's --allow-env list): Supabase's own plus their secrets. */
const FUNCTION_ENV = [
  'SUPABASE_URL',
  'SUPABASE_SECRET_KEYS',
  'SUPABASE_PUBLISHABLE_KEYS',
  'SUPABASE_JWKS',
  'SUPABASE_SERVICE_ROLE_KEY',
  'SUPABASE_ANON_KEY',
  'BACKUP_SECRET_KEY_NAME',
  'BACKUP_API_KEY',
  'BACKUP_TABLE',
  // trigger-backup's
  'JWT_SECRET',
  'GITHUB_TOKEN',
  'GITHUB_REPOSITORY',
  'BACKUP_WORKFLOW',
  'BACKUP_REF',
  'GITHUB_API_URL',
  'GITHUB_TIMEOUT_MS',
  // backup-download's
  'BACKUP_S3_BUCKET',
  'BACKUP_S3_REGION',
  'BACKUP_S3_ENDPOINT',
  'BACKUP_S3_FORCE_PATH_STYLE',
  'BACKUP_S3_ACCESS_KEY_ID',
  'BACKUP_S3_SECRET_ACCESS_KEY',
  'BACKUP_S3_SESSION_TOKEN',
  'DOWNLOAD_URL_TTL_SECONDS'
] as const
export type FunctionEnv = Partial<Record<(typeof FUNCTION_ENV)[number], string>>

export interface RunningFunction {
  name: string
  port: number
  /** Supabase's gateway checks the caller's JWT first unless config.toml says verify_jwt = false. */
  verifyJwt: boolean
  stop(): Promise<void>
}

/** The deno executable from node_modules (the npm package links it next to its own files). */
export function denoBinary(): string {
  return (require('deno/install_api.cjs') as { runInstall(): string }).runInstall()
}

/**
 * `verify_jwt` per function from supabase/config.toml, which `supabase functions deploy` reads;
 * Supabase's default is true.
 */
export function verifyJwtSetting(name: string, configToml = path.join(REPO_ROOT, 'supabase', 'config.toml')): boolean {
  let text: string
  try {
    text = readFileSync(configToml, 'utf8')
  } catch {
    return true
  }
  const section = new RegExp(`^\\[functions\\.${name.replace(/[-]/g, '\\-')}\\]\\s*$([\\s\\S]*?)(?=^\\[|(?![\\s\\S]))`, 'm').exec(text)
  const setting = section ? /^\s*verify_jwt\s*=\s*(true|false)\s*$/m.exec(section[1] ?? '') : null
  return setting?.[1] !== 'false'
}

/** Starts one function with least privilege (loopback network, its own env names only). */
export async function startFunction(
  name: string,
  env: FunctionEnv,
  log: NodeJS.WritableStream,
  onSpawn: (pid: number) => void = () => {}
): Promise<RunningFunction> {
  const entry = path.join(REPO_ROOT, 'supabase', 'functions', name, 'index.ts')
  const child = spawn(denoBinary(), ['run', '--no-prompt', '--allow-net=127.0.0.1', `--allow-env=${FUNCTION_ENV.join(',')}`, entry], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NO_COLOR: '1',
      DENO_SERVE_ADDRESS: 'tcp:127.0.0.1:0',
      // Deno fetches the functions' npm imports; behind a proxy with its own CA, it needs the machine's bundle.
      ...(process.env.SSL_CERT_FILE ? { DENO_CERT: process.env.SSL_CERT_FILE } : {}),
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  if (child.pid !== undefined) onSpawn(child.pid)
  child.stdout.pipe(log, { end: false })
  child.stderr.pipe(log, { end: false })
  const port = await listeningPort(child, name)
  return { name, port, verifyJwt: verifyJwtSetting(name), stop: () => stop(child) }
}

/** Deno.serve announces "Listening on http://127.0.0.1:<port>/" on stderr. */
function listeningPort(child: ChildProcess, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => fail(new Error(`function ${name} did not start listening within 30 s: ${seen}`)), 30_000)
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8')
      const match = /Listening on https?:\/\/[^:\s]+:(\d+)/.exec(seen)
      if (!match) return
      cleanup()
      resolve(Number(match[1]))
    }
    const onExit = (code: number | null): void => fail(new Error(`function ${name} exited (${code}) before listening: ${seen}`))
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
    }
    const fail = (error: Error): void => {
      cleanup()
      child.kill('SIGKILL')
      reject(error)
    }
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}
