// Shared shapes and paths of the local test services (used by cli.ts, daemon.ts and the harness).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ProjectKeys } from './gateway.js'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SERVICES_DIR = path.join(REPO_ROOT, '.services')
/** Lane 1's env, for the demo and for people who `source .services/env.sh`. */
export const ENV_JSON = path.join(SERVICES_DIR, 'env.json')
export const ENV_SH = path.join(SERVICES_DIR, 'env.sh')

/**
 * The services come in lanes: each a set of its own (a Postgres cluster, the REST stand-in with
 * its functions, the S3 server), so that test files run in parallel, one per lane, and a fault or
 * an outage one injects reaches no other. `node --test` numbers its workers from 1
 * (NODE_TEST_WORKER_ID); a test file outside it uses lane 1.
 */
export const laneDir = (lane: number): string => path.join(SERVICES_DIR, `lane-${lane}`)
export const laneEnvJson = (lane: number): string => path.join(laneDir(lane), 'env.json')
/** Written first thing when a lane starts, so `stop` can clean up even a half-started one. */
export const laneStateJson = (lane: number): string => path.join(laneDir(lane), 'state.json')

/** A lane's env.json: everything a test, the demo or CI needs to reach its services. */
export interface ServicesEnv {
  SUPABASE_URL: string
  /** The legacy JWT-based keys (refused once a test disables them: gateway.ts). */
  SUPABASE_ANON_KEY: string
  SUPABASE_SERVICE_ROLE_KEY: string
  /** The opaque keys (sb_publishable_..., sb_secret_...), accepted unless the project is legacy-only. */
  SUPABASE_PUBLISHABLE_KEY: string
  SUPABASE_SECRET_KEY: string
  /** The project's JWKS as Supabase publishes it (the public halves of SIGNING_KEYS). */
  SUPABASE_JWKS: string
  /** The signing keys with their private halves (JSON of jwt.ts SigningKey[]), for tests to issue user tokens. */
  SIGNING_KEYS: string
  /** The update-backup edge function's shared secret (the action's `backup-api-key`). */
  BACKUP_API_KEY: string
  JWT_SECRET: string
  DATABASE_URL: string
  PGDATA: string
  PGBIN: string
  PGPORT: string
  PGHOST: string
  PGLOG: string
  S3_ENDPOINT: string
  S3_REGION: string
  S3_ACCESS_KEY_ID: string
  S3_SECRET_ACCESS_KEY: string
  S3_BUCKET: string
  S3_DIR: string
  SERVICES_PID: string
  SERVICES_STATE_DIR: string
  SERVICES_LOG: string
}

/** What `stop` needs; filled in progressively while `start` runs. */
export interface ServicesState {
  stateDir: string
  pgdata?: string
  pgbin?: string
  daemonPid?: number
}

/** Handed to the daemon (as a file path argument) so secrets stay off the command line. */
export interface DaemonConfig {
  databaseUrl: string
  keys: ProjectKeys
  backupApiKey: string
  s3Dir: string
  s3AccessKeyId: string
  s3SecretAccessKey: string
  buckets: string[]
  /** The daemon writes {restPort, s3Port} here once both servers listen. */
  readyFile: string
}

export interface DaemonReady {
  restPort: number
  s3Port: number
  pid: number
}

/**
 * The daemon appends each edge function's pid here as it spawns it, so `stop` can end them even
 * when the daemon died before it could (or before it was ready).
 */
export const functionPidsFile = (stateDir: string): string => path.join(stateDir, 'function-pids')

/** The edge functions the services run (supabase/functions/<name>/index.ts). */
export const FUNCTIONS = ['update-backup'] as const
