// The one background process hosting the PostgREST stand-in (with Supabase's gateway routes to
// the edge functions, which run as Deno child processes) and the patched s3rver.
// Spawned detached by `cli.ts start`; ports are chosen by the kernel (listen on 0) and reported
// through the ready file, so there is no free-port race.
import { appendFileSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import path from 'node:path'
import { FUNCTIONS, functionPidsFile, type DaemonConfig, type DaemonReady } from './config.js'
import { startFunction, type RunningFunction } from './functions.js'
import { startRest } from './rest.js'
import { startS3 } from './s3.js'

const configPath = process.argv[2]
if (!configPath) {
  console.error('usage: daemon.ts <config.json>')
  process.exit(2)
}
const config = JSON.parse(readFileSync(configPath, 'utf8')) as DaemonConfig

const { rest, port: restPort } = await startRest({ databaseUrl: config.databaseUrl, keys: config.keys })
const { s3, port: s3Port } = await startS3({
  directory: config.s3Dir,
  accessKeyId: config.s3AccessKeyId,
  secretAccessKey: config.s3SecretAccessKey,
  buckets: config.buckets
})

// Inside Supabase a function reaches the database API through the project URL; here, the stand-in.
// It gets the variables Supabase gives functions in the project's current key state.
const deploy = (): Promise<RunningFunction[]> =>
  Promise.all(
    FUNCTIONS.map(name =>
      startFunction(
        name,
        { SUPABASE_URL: `http://127.0.0.1:${restPort}`, ...rest.gateway.functionEnv(), BACKUP_API_KEY: config.backupApiKey },
        process.stdout,
        pid => appendFileSync(functionPidsFile(path.dirname(config.readyFile)), `${pid}\n`)
      )
    )
  )
let functions = await deploy()
for (const fn of functions) rest.routeFunction(fn.name, fn.port, fn.verifyJwt)
// A test switched the project's API keys: Supabase redeploys nothing, but the variables change, so restart.
rest.onKeyState = async () => {
  await Promise.all(functions.map(fn => fn.stop()))
  functions = await deploy()
  for (const fn of functions) rest.routeFunction(fn.name, fn.port, fn.verifyJwt)
}

const ready: DaemonReady = { restPort, s3Port, pid: process.pid }
// Write-then-rename: the CLI never reads a half-written file.
writeFileSync(`${config.readyFile}.tmp`, JSON.stringify(ready))
renameSync(`${config.readyFile}.tmp`, config.readyFile)
console.log(
  `services daemon ${process.pid}: rest on ${restPort}, s3 on ${s3Port}, ${functions.map(fn => `${fn.name} on ${fn.port}`).join(', ')}`
)

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.log(`received ${signal}, shutting down`)
  const timer = setTimeout(() => process.exit(0), 3000)
  timer.unref()
  await Promise.allSettled([rest.close(), s3.close(), ...functions.map(fn => fn.stop())])
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
// Keep serving on stray errors: one bad request must not take the test services down.
process.on('uncaughtException', err => console.error('uncaught:', err))
process.on('unhandledRejection', err => console.error('unhandled rejection:', err))
