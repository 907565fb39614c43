// Test-side handles on the local services started by `bash scripts/services.sh start`.
// Reads the env.json of this test file's lane; never starts anything itself (tests stay fast and explicit).
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client
} from '@aws-sdk/client-s3'
import type { HeadObjectCommandOutput, PutObjectCommandInput, PutObjectCommandOutput } from '@aws-sdk/client-s3'
import pg from 'pg'
import { laneDir, laneEnvJson, SERVICES_DIR } from '../../scripts/test-services/config.js'
import type { ServicesEnv } from '../../scripts/test-services/config.js'
import { pgRunning, pgStart, pgStop } from '../../scripts/test-services/postgres.js'
import type { KeyState } from '../../scripts/test-services/gateway.js'
import type { RestFault, RestStats } from '../../scripts/test-services/rest.js'
import type { S3Fault, S3Stats } from '../../scripts/test-services/s3.js'

export type { KeyState, ServicesEnv, RestFault, RestStats, S3Fault, S3Stats }

export interface OpenUpload {
  key: string
  uploadId: string
  initiated: Date | undefined
}

export interface ObjectInfo {
  key: string
  size: number
  etag: string | undefined
}

export interface Services {
  env: ServicesEnv
  /** Run SQL as the postgres superuser (pooled). */
  sql<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /** Close the SQL pool (call in an `after` hook). */
  end(): Promise<void>
  postgres: {
    /** `pg_ctl stop -m fast`, waits until down. */
    stop(): Promise<void>
    /** `pg_ctl start`, waits until it accepts connections. */
    start(): Promise<void>
    running(): Promise<boolean>
  }
  rest: {
    faults(f: RestFault): Promise<void>
    stats(): Promise<RestStats>
    resetStats(): Promise<void>
    /**
     * Redeploys an edge function with or without JWT verification at the gateway (`--no-verify-jwt`); with `port`,
     * the gateway serves /functions/v1/<name> from a function the test started (startFunction, its own secrets).
     */
    deployFunction(name: string, options: { verifyJwt: boolean; port?: number }): Promise<void>
    /**
     * Which API keys the project has (scripts/test-services/gateway.ts): legacy-only, both (the
     * default), or legacy-disabled. The lane's functions are restarted with the variables of that state.
     */
    projectKeys(state: KeyState): Promise<void>
  }
  s3: {
    client: S3Client
    faults(f: S3Fault): Promise<void>
    stats(): Promise<S3Stats>
    resetStats(): Promise<void>
    /** Resolves once PutObject/UploadPart bodies have delivered ≥ n bytes in total. */
    waitForPartBytes(n: number, timeoutMs?: number): Promise<S3Stats>
    openUploads(bucket: string, prefix?: string): Promise<OpenUpload[]>
    objects(bucket: string, prefix?: string): Promise<ObjectInfo[]>
    getObject(bucket: string, key: string): Promise<Buffer>
    headObject(bucket: string, key: string): Promise<HeadObjectCommandOutput>
    putObject(
      bucket: string,
      key: string,
      body: PutObjectCommandInput['Body'],
      extra?: Omit<PutObjectCommandInput, 'Bucket' | 'Key' | 'Body'>
    ): Promise<PutObjectCommandOutput>
  }
  /** Create a uniquely named bucket, so a test can own its objects. */
  newBucket(prefix?: string): Promise<string>
  /** Clear REST and S3 faults. */
  clearFaults(): Promise<void>
}

let leased: Promise<number> | undefined

/**
 * The lane this test process holds, leased on first use and given back when the process exits:
 * `node --test` runs as many files at once as there are lanes, so no two files running together
 * share services, and a fault or an outage one injects reaches no other. (NODE_TEST_WORKER_ID
 * cannot serve: the runner hands the same number to files that overlap.)
 */
export function servicesLane(): Promise<number> {
  leased ??= leaseLane()
  return leased
}

async function leaseLane(): Promise<number> {
  const lanes = existingLanes()
  if (lanes.length === 0) {
    throw new Error(`test services are not running (no ${SERVICES_DIR}/lane-*): run \`bash scripts/services.sh start\` first`)
  }
  const deadline = Date.now() + LEASE_WAIT_MS
  for (;;) {
    for (const lane of lanes) {
      if (!tryLease(lane)) continue
      await resetLane(lane)
      return lane
    }
    // More test files than lanes at once (a hand-run --test-concurrency): wait for one to end.
    if (Date.now() > deadline) throw new Error(`no lane of the test services became free within ${LEASE_WAIT_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const LEASE_WAIT_MS = 10 * 60_000

function existingLanes(): number[] {
  let names: string[]
  try {
    names = readdirSync(SERVICES_DIR)
  } catch {
    return []
  }
  return names
    .map(name => /^lane-(\d+)$/.exec(name)?.[1])
    .filter((lane): lane is string => lane !== undefined && existsSync(laneEnvJson(Number(lane))))
    .map(Number)
    .sort((a, b) => a - b)
}

/**
 * What a test file may have left in its lane, undone before the next one starts: faults, the
 * project's key state, a stopped Postgres. Each file also cleans up after itself; this is for one
 * that failed or was killed half-way.
 */
async function resetLane(lane: number): Promise<void> {
  const env = JSON.parse(await readFile(laneEnvJson(lane), 'utf8')) as ServicesEnv
  if (!(await pgRunning(env.PGBIN, env.PGDATA))) await pgStart(env.PGBIN, env.PGDATA, env.PGLOG)
  await Promise.all([
    control(env.SUPABASE_URL, 'POST', 'faults', { mode: 'none' }),
    control(env.S3_ENDPOINT, 'POST', 'faults', { mode: 'none' }),
    control(env.SUPABASE_URL, 'POST', 'project', { keys: 'both' })
  ])
}

/** Takes the lane if no live process holds it: the lease file is created exclusively, and removed at exit. */
function tryLease(lane: number): boolean {
  const lease = path.join(laneDir(lane), 'lease')
  try {
    writeFileSync(lease, String(process.pid), { flag: 'wx' })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const holder = leaseHolder(lease)
    if (holder === undefined || isAlive(holder)) return false
    // Left by a test process that was killed: take it over; of two takers, the next wx picks one.
    rmSync(lease, { force: true })
    return tryLease(lane)
  }
  process.once('exit', () => rmSync(lease, { force: true }))
  return true
}

/** The pid in a lease file; undefined while it is being written or removed. */
function leaseHolder(lease: string): number | undefined {
  try {
    const pid = Number(readFileSync(lease, 'utf8'))
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export async function readServicesEnv(): Promise<ServicesEnv> {
  return JSON.parse(await readFile(laneEnvJson(await servicesLane()), 'utf8')) as ServicesEnv
}

async function control<T>(base: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}/__control/${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body)
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`control ${method} ${route} → ${res.status}: ${text}`)
  return JSON.parse(text) as T
}

export async function services(): Promise<Services> {
  const env = await readServicesEnv()
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 })
  // Tests stop Postgres on purpose; idle clients dying then must not crash the test process.
  pool.on('error', () => {})

  const client = new S3Client({
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
  })

  const bodyBuffer = async (body: unknown): Promise<Buffer> => {
    const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined
    if (!b?.transformToByteArray) throw new Error('GetObject returned no body')
    return Buffer.from(await b.transformToByteArray())
  }

  const s3: Services['s3'] = {
    client,
    faults: async f => void (await control(env.S3_ENDPOINT, 'POST', 'faults', f)),
    stats: () => control<S3Stats>(env.S3_ENDPOINT, 'GET', 'stats'),
    resetStats: async () => void (await control(env.S3_ENDPOINT, 'POST', 'reset-stats')),
    waitForPartBytes: (n, timeoutMs = 30_000) => control<S3Stats>(env.S3_ENDPOINT, 'GET', `wait?partBytes=${n}&timeoutMs=${timeoutMs}`),
    async openUploads(bucket, prefix) {
      const out: OpenUpload[] = []
      let keyMarker: string | undefined
      for (;;) {
        const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker }))
        for (const u of page.Uploads ?? []) out.push({ key: u.Key ?? '', uploadId: u.UploadId ?? '', initiated: u.Initiated })
        if (!page.IsTruncated || !page.NextKeyMarker) return out
        keyMarker = page.NextKeyMarker
      }
    },
    async objects(bucket, prefix) {
      const out: ObjectInfo[] = []
      let token: string | undefined
      for (;;) {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
        for (const o of page.Contents ?? []) out.push({ key: o.Key ?? '', size: o.Size ?? 0, etag: o.ETag })
        if (!page.IsTruncated || !page.NextContinuationToken) return out
        token = page.NextContinuationToken
      }
    },
    getObject: async (bucket, key) => bodyBuffer((await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body),
    headObject: (bucket, key) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
    putObject: (bucket, key, body, extra = {}) => client.send(new PutObjectCommand({ ...extra, Bucket: bucket, Key: key, Body: body }))
  }

  const waitForSql = async (up: boolean): Promise<void> => {
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const c = new pg.Client({ connectionString: env.DATABASE_URL, connectionTimeoutMillis: 1000 })
      const ok = await c
        .connect()
        .then(() => c.query('select 1'))
        .then(
          () => true,
          () => false
        )
      await c.end().catch(() => {})
      if (ok === up) return
      await new Promise(r => setTimeout(r, 100))
    }
    throw new Error(`postgres did not become ${up ? 'ready' : 'unreachable'} in time`)
  }

  return {
    env,
    async sql<T extends object = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
      return (await pool.query<T>(text, params)).rows
    },
    end: () => pool.end(),
    postgres: {
      async stop() {
        await pgStop(env.PGBIN, env.PGDATA)
        await waitForSql(false)
      },
      async start() {
        if (!(await pgRunning(env.PGBIN, env.PGDATA))) await pgStart(env.PGBIN, env.PGDATA, env.PGLOG)
        await waitForSql(true)
      },
      running: () => pgRunning(env.PGBIN, env.PGDATA)
    },
    rest: {
      faults: async f => void (await control(env.SUPABASE_URL, 'POST', 'faults', f)),
      stats: () => control<RestStats>(env.SUPABASE_URL, 'GET', 'stats'),
      resetStats: async () => void (await control(env.SUPABASE_URL, 'POST', 'reset-stats')),
      deployFunction: async (name, options) => void (await control(env.SUPABASE_URL, 'POST', 'functions', { name, ...options })),
      projectKeys: async state => void (await control(env.SUPABASE_URL, 'POST', 'project', { keys: state }))
    },
    s3,
    async newBucket(prefix = 'test') {
      const name = `${prefix}-${randomBytes(6).toString('hex')}`.toLowerCase()
      await client.send(new CreateBucketCommand({ Bucket: name }))
      return name
    },
    async clearFaults() {
      await Promise.all([
        control(env.SUPABASE_URL, 'POST', 'faults', { mode: 'none' }),
        control(env.S3_ENDPOINT, 'POST', 'faults', { mode: 'none' })
      ])
    }
  }
}
