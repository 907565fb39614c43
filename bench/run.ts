// `npm run bench [-- --size 4GiB] [--runs 3] [--quick] [--source database]`: times this action's archive +
// upload against what a user would script by hand, on one generated tree (or database) and one local S3
// store (scripts/services.sh), and writes the table to bench/results.md (one section per source and size).
//
// The action runs as the runner runs it (dist/main under the runner emulator, against a real row),
// so its time includes node's start, the row's claim and finalize, listing, and verifying the object.
// Peers run as shell pipelines into `aws s3 cp -` (Debian's aws-cli). Peak RSS is the sum over the
// process tree (the action, or every process of a pipeline), sampled from /proc; the store is not in it.
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { ACTION_DIR, actionInputs, insertRow, restoreInputs } from '../__tests__/harness/backup-job.js'
import { runHook } from '../__tests__/harness/runner.js'
import { services, type Services } from '../__tests__/harness/services.js'
import { AGE_MAGIC, isAgeEncrypted } from '../src/crypto/age.js'
import { generateIdentity } from '../src/crypto/keys.js'
import { chooseClients, findClients, toolPath } from '../src/postgres/clients.js'
import { databaseName, dropDatabase, generateDatabase, type GeneratedDatabase } from './database.js'
import { generateTree } from './tree.js'

const MiB = 1024 * 1024
const AWS = '/usr/bin/aws' // Debian's aws-cli (a pyenv or pip one earlier in PATH may differ)
const RESULTS = path.join(ACTION_DIR, 'bench', 'results.md')
/** For the passphrase contender: the action asks for 12 characters at least. Not a secret. */
const BENCH_PASSPHRASE = 'bench passphrase, not a secret'

interface Contender {
  name: string
  format: string
  /** Compared with the best peer of the same group; the format when not set. */
  group?: string
  /** Runs once; resolves with the object's key. */
  run(key: string): Promise<void>
  /** Before each run, not timed (e.g. an empty restore target). */
  prepare?(): Promise<void>
  /** False for the read floor and restores, which upload nothing. */
  uploads: boolean
  /** The read floor: shown, but no peer to compare with. */
  floor?: boolean
  action: boolean
  /** Its object must be an age file, checked after each run: a contender that stored plaintext fails instead of timing the wrong thing. */
  encrypted?: boolean
  /** The name of another contender this one is also measured against, under the table (encryption: the same backup unencrypted). */
  baseline?: string
}

interface Measured {
  contender: Contender
  seconds: number[]
  /** CPU seconds of the contender's processes, and of the services daemon (the store) meanwhile, per run. */
  cpu: number[]
  storeCpu: number[]
  bytes: number
  peakRssMiB: number
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1GiB' },
      runs: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      only: { type: 'string' },
      source: { type: 'string', default: 'tree' }
    }
  })
  const size = values.quick ? 128 * MiB : parseSize(values.size)
  const runs = values.quick ? 1 : Number(values.runs)
  const source = values.source
  if (source !== 'tree' && source !== 'database') throw new Error(`--source must be tree or database, got '${source}'`)
  ensureTools()
  const servicesScript = path.join(ACTION_DIR, 'scripts/services.sh')
  // Services someone else started stay up; those the bench starts, it stops, as the test script does.
  const startedHere = spawnSync('bash', [servicesScript, 'status'], { stdio: 'ignore' }).status !== 0
  execFileSync('bash', [servicesScript, 'start'], { stdio: 'inherit' })
  const svc = await services()
  const bucket = await svc.newBucket('bench')
  const workspace = await mkdtemp(path.join(os.tmpdir(), 'bench-tree-'))
  // Restores write into memory where the machine has a tmpfs: on this VM's disk, writing and deleting a GiB of
  // files per run made each run slower than the one before (5.5, 12, 18 s), which measured the disk, not the tools.
  const restoreArea = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/bench-restore-') : workspace
  let database: GeneratedDatabase | undefined
  try {
    const only = values.only ? new RegExp(values.only) : undefined
    let contenders: Contender[]
    let described: string
    let sourceBytes: number
    if (source === 'database') {
      const pgDump = await pgDumpOf(svc)
      console.log(`Generating a ${formatSize(size)} database (${databaseName(size)}) ...`)
      database = await generateDatabase(svc, size, pgDump, line => console.log(line))
      const rows = database.tables.map(table => `${table.rows} ${table.name}`).join(', ')
      described = `${formatSize(size)} database: ${rows}; ${formatSize(database.bytes)} on disk, a plain pg_dump of ${formatSize(database.dumpBytes)} (${formatSize(2 * database.byteaBytes)} of it random bytea, in hex).`
      sourceBytes = database.dumpBytes
      contenders = [...databaseContenders(svc, bucket, workspace, database, pgDump)]
    } else {
      console.log(`Generating a ${formatSize(size)} tree in ${workspace}/data ...`)
      const tree = await generateTree(path.join(workspace, 'data'), size)
      described = `${formatSize(size)} tree: ${tree.files} files, ${formatSize(tree.bytes)} (a third incompressible).`
      sourceBytes = tree.bytes
      const restoring = !values.quick && (!only || only.test('restore'))
      const recipient = ageRecipient()
      contenders = [
        ...actionContenders(svc, bucket, workspace, recipient),
        ...peerContenders(svc, bucket, workspace, recipient),
        ...(restoring ? await restoreContenders(svc, bucket, workspace, restoreArea) : [])
      ]
    }
    console.log(`${described} ${os.availableParallelism()} cores; ${runs} run(s) each.`)
    const selected = contenders.filter(contender => !only || only.test(contender.name))
    const results: Measured[] = selected.map(contender => ({ contender, seconds: [], cpu: [], storeCpu: [], bytes: 0, peakRssMiB: 0 }))
    const daemon = Number(svc.env.SERVICES_PID)
    // In rounds, each contender once per round: a load that comes and goes on the machine then
    // slows every contender alike, instead of the ones that happened to run during it.
    for (let i = 0; i < runs; i++) {
      for (const measured of results) {
        const { contender } = measured
        const key = `bench/${randomUUID()}`
        await contender.prepare?.()
        // Every run starts on a disk with nothing left to write from the run before (the store writes too).
        execFileSync('sync')
        const sampler = sampleTreeRss()
        const cpuBefore = [await childrenCpu(), await processCpu(daemon)] as const
        const started = performance.now()
        await contender.run(key)
        measured.seconds.push((performance.now() - started) / 1000)
        measured.cpu.push((await childrenCpu()) - cpuBefore[0])
        measured.storeCpu.push((await processCpu(daemon)) - cpuBefore[1])
        measured.peakRssMiB = Math.max(measured.peakRssMiB, sampler.stop())
        if (contender.uploads) {
          const objectKey = contender.action ? await onlyKey(svc, bucket) : key
          if (contender.encrypted) await expectAgeFile(svc, bucket, objectKey)
          measured.bytes = (await svc.s3.headObject(bucket, objectKey)).ContentLength ?? 0
          await svc.s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }))
        }
        console.log(`  ${contender.name}: ${measured.seconds.at(-1)?.toFixed(2)} s`)
      }
    }
    const table = render(results, described, { label: source === 'database' ? 'dump' : 'tree', bytes: sourceBytes }, runs)
    console.log(`\n${table}`)
    // A partial run (--only) gets its own section, so it never replaces the full table.
    const heading = `${formatSize(size)}${source === 'database' ? ' database' : ''}${values.only ? ` (only /${values.only}/)` : ''}`
    if (!values.quick) await saveSection(heading, table)
  } finally {
    if (!values.keep) {
      await rm(workspace, { recursive: true, force: true })
      if (database) await dropDatabase(svc, database.name)
    }
    await rm(restoreArea, { recursive: true, force: true })
    await svc.end()
    if (startedHere) execFileSync('bash', [servicesScript, 'stop'], { stdio: 'inherit' })
  }
}

/** How a backup differs from the default one of its format: named in the contender's name, and the inputs that make it so. */
interface Variant {
  label: string
  inputs: Record<string, string>
}

function actionContenders(svc: Services, bucket: string, workspace: string, recipient: string): Contender[] {
  const backup = (format: string, variant?: Variant): Contender => actionBackup(svc, bucket, workspace, format, variant)
  const backups = (['tar.gz', 'tar.zst', 'zip', 'tar'] as const).map(format => backup(format))
  // Issue 20's criterion for encryption is against the same backup unencrypted (at most 1.10×), so that one is
  // each's baseline; the format gets .age, as the key does, so the encrypted pipeline is their best peer.
  const encrypted = (variant: Variant): Contender => ({
    ...backup('tar.zst', variant),
    format: 'tar.zst.age',
    encrypted: true,
    baseline: backup('tar.zst').name
  })
  return [
    ...backups,
    // What verification costs, on the default format: none (size only) and download (read back) beside checksum above.
    backup('zip', { label: 'verify: none', inputs: { verify: 'none' } }),
    backup('zip', { label: 'verify: download', inputs: { verify: 'download' } }),
    encrypted({ label: 'encrypt-to', inputs: { 'encrypt-to': recipient } }),
    // scrypt adds about a second and 256 MiB, once per backup.
    encrypted({ label: 'encrypt-passphrase', inputs: { 'encrypt-passphrase': BENCH_PASSPHRASE } })
  ]
}

function actionBackup(svc: Services, bucket: string, workspace: string, format: string, variant: Variant | undefined): Contender {
  return {
    name: `action ${format}${variant ? ` (${variant.label})` : ''}`,
    format,
    uploads: true,
    action: true,
    async run() {
      await backUp(svc, bucket, workspace, format, variant?.inputs ?? {}, 'bench/{dispatch_id}.{ext}')
    }
  }
}

/** One backup by the action (main, as the runner starts it); the row's id once it is success. */
async function backUp(
  svc: Services,
  bucket: string,
  workspace: string,
  format: string,
  inputs: Record<string, string>,
  key: string
): Promise<string> {
  const row = await insertRow(svc)
  const result = await runHook({
    actionDir: ACTION_DIR,
    workspace,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: 'data', format, key, ...inputs })
  })
  if (result.conclusion !== 'success') throw new Error(`the action failed:\n${result.stdout}\n${result.stderr}`)
  return row.id
}

/**
 * Restoring: the restore sub-action (download, checks, extraction) against `aws s3 cp` into tar or
 * unzip, from the same object: a tar.gz and a zip backup made once, kept under restore/.
 */
async function restoreContenders(svc: Services, bucket: string, workspace: string, restoreArea: string): Promise<Contender[]> {
  const target = path.join(restoreArea, 'restored')
  const contenders: Contender[] = []
  for (const format of ['tar.gz', 'zip']) {
    const backupId = await backUp(svc, bucket, workspace, format, {}, `restore/${format}/{dispatch_id}.{ext}`)
    const [object] = await svc.s3.objects(bucket, `restore/${format}/`)
    if (!object) throw new Error('the backup to restore is missing')
    const stored = `'s3://${bucket}/${object.key}'`
    const endpoint = `--endpoint-url '${svc.env.S3_ENDPOINT}' --only-show-errors`
    const fresh = async (): Promise<void> => rm(target, { recursive: true, force: true })
    contenders.push({
      name: `action restore ${format}`,
      format: `restore ${format}`,
      uploads: false,
      action: true,
      prepare: fresh,
      async run() {
        const result = await runHook({
          actionDir: path.join(ACTION_DIR, 'restore'),
          workspace,
          inputs: restoreInputs(svc, bucket, { 'backup-id': backupId, path: target })
        })
        if (result.conclusion !== 'success') throw new Error(`the restore failed:\n${result.stdout}\n${result.stderr}`)
      }
    })
    // unzip needs the whole file (its directory is at the end); tar reads the stream.
    const peerCommand =
      format === 'zip'
        ? `${AWS} s3 cp ${stored} '${target}.zip' ${endpoint} && unzip -q '${target}.zip' -d '${target}' && rm '${target}.zip'`
        : `${AWS} s3 cp ${stored} - ${endpoint} | tar -xzf - -C '${target}'`
    contenders.push({
      name: format === 'zip' ? 'aws s3 cp + unzip' : 'aws s3 cp - | tar -xzf',
      format: `restore ${format}`,
      uploads: false,
      action: false,
      prepare: fresh,
      async run() {
        await mkdir(target)
        await shell(peerCommand, workspace, awsEnv(svc))
      }
    })
  }
  return contenders
}

/** `aws s3 cp -` of standard input to `key` in the local store: the end of every peer's pipeline. */
function awsUpload(svc: Services, bucket: string, key: string): string {
  return `${AWS} s3 cp - 's3://${bucket}/${key}' --endpoint-url '${svc.env.S3_ENDPOINT}' --only-show-errors`
}

/** A peer: a shell pipeline run in `workspace`; one that uploads nothing is a floor. */
function shellPeer(
  svc: Services,
  workspace: string,
  spec: { name: string; format: string; group?: string; pipeline: (key: string) => string; uploads?: boolean }
): Contender {
  const { pipeline, uploads = true, ...named } = spec
  return { ...named, uploads, floor: !uploads, action: false, run: key => shell(pipeline(key), workspace, awsEnv(svc)) }
}

function peerContenders(svc: Services, bucket: string, workspace: string, recipient: string): Contender[] {
  const upload = (key: string): string => awsUpload(svc, bucket, key)
  const peer = (name: string, format: string, pipeline: (key: string) => string, uploads = true): Contender =>
    shellPeer(svc, workspace, { name, format, pipeline, uploads })
  // Only where age could be installed (ensureTools): the issue compares with it "when age is installable".
  const agePeer: Contender[] = commandExists('age')
    ? [
        {
          ...peer(
            'tar | zstd -3 -T0 | age | aws',
            'tar.zst.age',
            key => `tar -cf - data | zstd -q -3 -T0 | age -r ${recipient} | ${upload(key)}`
          ),
          encrypted: true
        }
      ]
    : []
  return [
    peer('tar | gzip -6 | aws', 'tar.gz', key => `tar -cf - data | gzip -6 | ${upload(key)}`),
    peer('tar | pigz -6 | aws', 'tar.gz', key => `tar -cf - data | pigz -6 | ${upload(key)}`),
    peer('tar | zstd -3 -T0 | aws', 'tar.zst', key => `tar -cf - data | zstd -q -3 -T0 | ${upload(key)}`),
    ...agePeer,
    // Without -y: zip cannot store a symlink into a pipe, so it stores the linked file.
    peer('zip -r -6 - | aws', 'zip', key => `zip -q -r -6 - data | ${upload(key)}`),
    peer('tar | aws', 'tar', key => `tar -cf - data | ${upload(key)}`),
    // Through cat: GNU tar notices an archive written to /dev/null and skips reading the files.
    peer('tar | cat > /dev/null (read floor)', 'tar', () => 'tar -cf - data | cat > /dev/null', false)
  ]
}

/**
 * The database: the action (database-url, no path) against a plain pg_dump of the same database
 * piped into a compressor and `aws s3 cp -`, with the pg_dump the action picks.
 */
function databaseContenders(svc: Services, bucket: string, workspace: string, database: GeneratedDatabase, pgDump: string): Contender[] {
  // zip (deflate, as gzip) streams the database as it is dumped, where tar formats spool it first.
  const actions = (['tar.zst', 'tar.gz', 'zip'] as const).map((format): Contender => ({
    name: `action database ${format}`,
    format,
    group: format === 'tar.zst' ? 'zstd' : 'gzip',
    uploads: true,
    action: true,
    async run() {
      const row = await insertRow(svc)
      const result = await runHook({
        actionDir: ACTION_DIR,
        workspace,
        inputs: actionInputs(svc, bucket, {
          'dispatch-id': row.dispatchId,
          path: '',
          'database-url': database.url,
          format,
          key: 'bench/{dispatch_id}.{ext}'
        })
      })
      if (result.conclusion !== 'success') throw new Error(`the action failed:\n${result.stdout}\n${result.stderr}`)
    }
  }))
  const upload = (key: string): string => awsUpload(svc, bucket, key)
  const dump = `'${pgDump}' --dbname='${database.url}'`
  const peer = (name: string, format: string, group: string, pipeline: (key: string) => string, uploads = true): Contender =>
    shellPeer(svc, workspace, { name, format, group, pipeline, uploads })
  return [
    ...actions,
    peer('pg_dump | zstd -3 -T0 | aws', 'sql.zst', 'zstd', key => `${dump} | zstd -q -3 -T0 | ${upload(key)}`),
    peer('pg_dump | pigz -6 | aws', 'sql.gz', 'gzip', key => `${dump} | pigz -6 | ${upload(key)}`),
    // The floor: dumping and nothing else.
    peer('pg_dump | cat > /dev/null (dump floor)', 'sql', 'sql', () => `${dump} | cat > /dev/null`, false)
  ]
}

/** The pg_dump the action picks for the services' server (src/postgres/clients.ts). */
async function pgDumpOf(svc: Services): Promise<string> {
  const [server] = await svc.sql<{ server_version_num: string }>('show server_version_num')
  const major = Math.floor(Number(server?.server_version_num ?? 0) / 10000)
  const clients = chooseClients(await findClients(), major)
  if (!clients) throw new Error(`no pg_dump for PostgreSQL ${major} is installed`)
  return toolPath(clients, 'pg_dump')
}

/** aws-cli pointed at the local store with the services' keys (the store checks SigV4 signatures). */
function awsEnv(svc: Services): Record<string, string> {
  const config = path.join(os.tmpdir(), 'bench-aws-config')
  execFileSync('sh', ['-c', `printf '[default]\\ns3 =\\n  addressing_style = path\\n' > '${config}'`])
  return {
    AWS_ACCESS_KEY_ID: svc.env.S3_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: svc.env.S3_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: svc.env.S3_REGION,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: ''
  }
}

function shell(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit']
    })
    child.on('error', reject)
    child.on('exit', code => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))))
  })
}

/**
 * The recipient the encrypted contenders encrypt to, new for each bench run. Made by the reference
 * age-keygen where it is installed, its identity only ever in the pipe (nothing decrypts here), else by
 * the action's own code.
 */
function ageRecipient(): string {
  if (!commandExists('age-keygen')) return generateIdentity().recipient
  return execFileSync('sh', ['-c', 'age-keygen 2>/dev/null | age-keygen -y'], { encoding: 'utf8' }).trim()
}

/** Throws unless the object starts as an age file does (a ranged read of its first bytes). */
async function expectAgeFile(svc: Services, bucket: string, key: string): Promise<void> {
  const range = `bytes=0-${AGE_MAGIC.length - 1}`
  const { Body } = await svc.s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }))
  const head = Buffer.from((await Body?.transformToByteArray()) ?? [])
  if (!isAgeEncrypted(head)) throw new Error(`${key} is not an age file: it starts with ${JSON.stringify(head.toString('latin1'))}`)
}

async function onlyKey(svc: Services, bucket: string): Promise<string> {
  const objects = await svc.s3.objects(bucket, 'bench/')
  if (objects.length !== 1 || !objects[0]) throw new Error(`expected one object in ${bucket}, found ${objects.length}`)
  return objects[0].key
}

/** CPU seconds (user + system) of this process's children that ended, with theirs: every contender's processes once it is done. */
async function childrenCpu(): Promise<number> {
  const fields = await statFields(process.pid)
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
}

/** CPU seconds (user + system) a running process has used. */
async function processCpu(pid: number): Promise<number> {
  const fields = await statFields(pid)
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

const CLOCK_TICKS = 100

/** /proc/<pid>/stat's fields after the command name (the 3rd field of proc(5) is the first here). */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/**
 * Peak of the summed RSS of this process's descendants, sampled every 100 ms by following
 * /proc/<pid>/task/<tid>/children down from this process (cheap: no scan of every pid).
 */
function sampleTreeRss(): { stop(): number } {
  let peak = 0
  const children = async (pid: number): Promise<number[]> => {
    const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
    const lists = await Promise.all(tasks.map(tid => readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '')))
    return lists.flatMap(list => list.split(' ').filter(Boolean).map(Number))
  }
  const rss = async (pid: number): Promise<number> => {
    const statm = await readFile(`/proc/${pid}/statm`, 'utf8').catch(() => '0 0')
    return Number(statm.split(' ')[1]) * 4096
  }
  const treeRss = async (pid: number): Promise<number> => {
    const below = await Promise.all((await children(pid)).map(async child => (await rss(child)) + (await treeRss(child))))
    return below.reduce((sum, bytes) => sum + bytes, 0)
  }
  let running = true
  void (async () => {
    while (running) {
      peak = Math.max(peak, await treeRss(process.pid))
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })()
  return {
    stop() {
      running = false
      return peak / MiB
    }
  }
}

/** `described` opens the section; each output is shown as a share of the source's bytes (the tree's, or a plain dump's). */
function render(results: Measured[], described: string, source: { label: string; bytes: number }, runs: number): string {
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN
  const best = new Map<string, number>()
  for (const r of results) {
    if (r.contender.action || r.contender.floor) continue
    const group = r.contender.group ?? r.contender.format
    best.set(group, Math.min(best.get(group) ?? Infinity, median(r.seconds)))
  }
  const lines = [
    `${described} ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${new Date().toISOString().slice(0, 10)}, median of ${runs}.`,
    '',
    `| contender | format | wall time (s) | × best peer | output | output / ${source.label} | peak RSS (MiB) | CPU (s) | store CPU (s) |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const r of results) {
    const seconds = median(r.seconds)
    const peer = best.get(r.contender.group ?? r.contender.format)
    const ratio = r.contender.action && peer ? `${(seconds / peer).toFixed(2)}×` : ''
    const output = r.contender.uploads ? `${(r.bytes / MiB).toFixed(1)} MiB` : ''
    const share = r.contender.uploads ? `${((100 * r.bytes) / source.bytes).toFixed(1)}%` : ''
    lines.push(
      `| ${r.contender.name.replaceAll('|', '\\|')} | ${r.contender.format} | ${seconds.toFixed(2)} | ${ratio} | ${output} | ${share} | ${r.peakRssMiB.toFixed(0)} | ${median(r.cpu).toFixed(1)} | ${median(r.storeCpu).toFixed(1)} |`
    )
  }
  // Against a baseline (when both ran): the table's ratio is to the best peer, this one to another contender.
  const byName = new Map(results.map(r => [r.contender.name, r]))
  const against = results.flatMap(r => {
    const base = r.contender.baseline ? byName.get(r.contender.baseline) : undefined
    if (!base) return []
    const times = (of: (m: Measured) => number[]): string => `${(median(of(r)) / median(of(base))).toFixed(2)}×`
    return [
      `- ${r.contender.name} against ${base.contender.name}: ${times(m => m.seconds)} the wall time, ${times(m => m.cpu)} the CPU; peak RSS ${r.peakRssMiB.toFixed(0)} MiB against ${base.peakRssMiB.toFixed(0)}.`
    ]
  })
  if (against.length > 0) lines.push('', ...against)
  return lines.join('\n')
}

/** Replaces this size's section of results.md, keeping the others. */
async function saveSection(size: string, table: string): Promise<void> {
  const heading = `## ${size}`
  const old = existsSync(RESULTS)
    ? await readFile(RESULTS, 'utf8')
    : '# Benchmark results\n\nWritten by `npm run bench`; see bench/README.md.\n'
  const sections = old.split(/^(?=## )/m)
  const kept = sections.filter(section => !section.startsWith(`${heading}\n`))
  const next = [...kept.map(section => section.trimEnd() + '\n'), `${heading}\n\n${table}\n`]
  await mkdir(path.dirname(RESULTS), { recursive: true })
  await writeFile(RESULTS, next.join('\n'))
  console.log(`Wrote ${RESULTS}`)
}

function ensureTools(): void {
  const missing = [
    ['pigz', 'pigz'],
    ['zstd', 'zstd'],
    ['zip', 'zip'],
    [AWS, 'awscli']
  ].filter(([tool]) => !commandExists(tool as string))
  if (missing.length > 0) aptInstall(missing.map(([, pkg]) => pkg as string))
  // age is optional: Debian has it since bullseye; without it the encrypted action runs with no pipeline to compare.
  if (!commandExists('age')) {
    try {
      aptInstall(['age'])
    } catch {
      console.log('age is not installable here: no age pipeline to compare the encrypted backups with')
    }
  }
}

function aptInstall(packages: string[]): void {
  console.log(`Installing ${packages.join(' ')} with apt-get`)
  execFileSync(
    'sh',
    ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages.join(' ')}`],
    { stdio: 'inherit' }
  )
}

function commandExists(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v '${tool}'`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB)?$/i.exec(text)
  if (!match) throw new Error(`--size must look like 512MiB or 4GiB, got '${text}'`)
  const unit = { kib: 1024, mib: MiB, gib: 1024 * MiB }[(match[2] ?? 'MiB').toLowerCase() as 'kib' | 'mib' | 'gib']
  return Math.round(Number(match[1]) * unit)
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * MiB ? `${+(bytes / 1024 / MiB).toFixed(2)} GiB` : `${+(bytes / MiB).toFixed(1)} MiB`
}

await main()
