import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import { DatabaseError } from '../errors.js'
import { qualifiedName, serverVersion, userTables } from '../postgres/catalog.js'
import { ensureClients, toolPath } from '../postgres/clients.js'
import { connect } from '../postgres/connect.js'
import { partPath, PART_NAMES, type DatabaseManifest, type ManifestTable, type PartName } from '../postgres/manifest.js'
import { toolConnectionString, toolEnvironment, type DatabaseUrl } from '../postgres/url.js'

/** One table compared after the restore: what the manifest says, what the database has. */
export interface TableCheck extends ManifestTable {
  restored: number
}

/** Marks the counts in psql's output, which otherwise may say other things. */
const COUNTS_BEGIN = '__supabase_s3_backup_counts__'
const COUNTS_END = '__supabase_s3_backup_counts_end__'
/** psql says where it stopped as `psql:<stdin>:LINE: ERROR: ...`. */
const PSQL_ERROR = /psql:<stdin>:(\d+): (.*)/

/**
 * Applies a backup's database/ part as Supabase's restore guide does, with psql: roles, schema,
 * then the data in replica mode (triggers off), stopping at the first error, all in one
 * transaction. The transaction is committed only after the whole object was read and checked and
 * every table's row count, counted inside it, equals the manifest's: a restore that fails leaves
 * the database as it was.
 */
export class DatabaseRestore {
  private readonly output: string[] = []
  private stderr = ''
  private readonly exited: Promise<number | null>
  /** Line (1-based, in the stream psql reads) where each part starts. */
  private readonly partStarts: [PartName, number][] = []
  private lines = 0
  private applied = new Set<PartName>()

  private constructor(
    private readonly psql: ChildProcessByStdio<Writable, Readable, Readable>,
    private readonly database: string
  ) {
    psql.stdout.setEncoding('utf8')
    psql.stdout.on('data', (text: string) => this.output.push(text))
    psql.stderr.setEncoding('utf8')
    psql.stderr.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-8192)
    })
    // A psql that stopped (an error) closes its stdin: writes then fail, and the exit says why.
    psql.stdin.on('error', () => {})
    this.exited = once(psql, 'close').then(([code]) => code as number | null)
  }

  /**
   * Checks the target (it must hold no tables of its own unless `allowNonEmpty`), finds a psql at
   * least the server's version, and starts the transaction. Nothing is written before this returns.
   */
  static async open(db: DatabaseUrl, allowNonEmpty: boolean, log: (line: string) => void): Promise<DatabaseRestore> {
    const client = await connect(db, 'restore into it')
    let server: { major: number; version: string }
    try {
      server = await serverVersion(client)
      if (!allowNonEmpty) await refuseNonEmpty(client, db)
    } finally {
      await client.end().catch(() => {})
    }
    const clients = await ensureClients(server.major, log)
    log(`Restoring into ${db.display} (PostgreSQL ${server.version}) with psql ${clients.version}.`)
    const psql = spawn(
      toolPath(clients, 'psql'),
      [
        '--no-psqlrc',
        '--quiet',
        '--no-align',
        '--tuples-only',
        '--set=ON_ERROR_STOP=1',
        `--dbname=${toolConnectionString(db)}`,
        '--file=-'
      ],
      { env: toolEnvironment(db), stdio: ['pipe', 'pipe', 'pipe'] }
    )
    const restore = new DatabaseRestore(psql, db.display)
    await restore.write('BEGIN;\n')
    return restore
  }

  /** Streams one part into psql; parts must come in order (roles, schema, data). */
  async apply(part: PartName, data: AsyncIterable<Buffer>): Promise<void> {
    const expected = PART_NAMES[this.applied.size]
    if (part !== expected)
      throw new DatabaseError(`The archive has ${partPath(part)} where ${partPath(expected ?? part)} should come; refusing it.`)
    this.partStarts.push([part, this.lines + 1])
    for await (const piece of data) await this.write(piece)
    // A part that does not end its last line would join it to the next part's first.
    await this.write('\n')
    this.applied.add(part)
  }

  /**
   * Counts every table of the manifest inside the transaction and commits when `commit` allows and
   * every count matches; otherwise rolls back. Returns the table-by-table result either way.
   */
  async finish(manifest: DatabaseManifest, commit: boolean): Promise<TableCheck[]> {
    const missing = PART_NAMES.filter(part => !this.applied.has(part))
    if (missing.length > 0) throw new DatabaseError(`The archive has no ${missing.map(partPath).join(', ')}; nothing was restored.`)
    await this.write(countQuery(manifest.tables))
    const counts = await this.counts(manifest.tables.length)
    const checks = manifest.tables.map((table, index) => ({ ...table, restored: counts[index] ?? -1 }))
    const differ = checks.filter(check => check.restored !== check.rows)
    const committing = commit && differ.length === 0
    await this.write(committing ? 'COMMIT;\n' : 'ROLLBACK;\n')
    this.psql.stdin.end()
    const code = await this.exited
    if (code !== 0) throw this.failure(code)
    if (differ.length > 0) {
      const shown = differ
        .slice(0, 5)
        .map(check => `${check.schema}.${check.name} has ${check.restored} rows, the manifest ${check.rows}`)
        .join('; ')
      throw Object.assign(
        new DatabaseError(
          `The restored row counts differ from the backup's manifest (${differ.length} of ${checks.length} tables: ${shown}); the transaction was rolled back, nothing was restored into ${this.database}.`
        ),
        { checks }
      )
    }
    return checks
  }

  /** Stops psql without committing: the transaction is rolled back. */
  async abort(): Promise<void> {
    this.psql.stdin.destroy()
    this.psql.kill('SIGTERM')
    await this.exited
  }

  private async write(data: Buffer | string): Promise<void> {
    if (this.psql.exitCode !== null || this.psql.stdin.destroyed) throw this.failure(await this.exited)
    const buffer = typeof data === 'string' ? Buffer.from(data) : data
    for (let at = buffer.indexOf(10); at !== -1; at = buffer.indexOf(10, at + 1)) this.lines += 1
    if (!this.psql.stdin.write(buffer)) {
      const drained = once(this.psql.stdin, 'drain').then(() => 'drain' as const)
      const stopped = this.exited.then(() => 'exit' as const)
      if ((await Promise.race([drained, stopped])) === 'exit') throw this.failure(await this.exited)
    }
  }

  /** The counts psql printed between the markers, in manifest order. */
  private async counts(tables: number): Promise<number[]> {
    for (;;) {
      const text = this.output.join('')
      const begin = text.indexOf(COUNTS_BEGIN)
      const end = text.indexOf(COUNTS_END)
      if (begin >= 0 && end > begin) {
        const counts = new Array<number>(tables).fill(-1)
        for (const line of text.slice(begin + COUNTS_BEGIN.length, end).split('\n')) {
          const [index, count] = line.trim().split('|').map(Number)
          if (index !== undefined && count !== undefined && Number.isInteger(index)) counts[index] = count
        }
        return counts
      }
      const outcome = await Promise.race([once(this.psql.stdout, 'data').then(() => 'more'), this.exited.then(() => 'exit')])
      if (outcome === 'exit' && !this.output.join('').includes(COUNTS_END)) throw this.failure(await this.exited)
    }
  }

  private failure(code: number | null): DatabaseError {
    const match = PSQL_ERROR.exec(this.stderr)
    let where = ''
    if (match) {
      const line = Number(match[1])
      const part = [...this.partStarts].reverse().find(([, start]) => start <= line)
      if (part) where = ` at ${partPath(part[0])} line ${line - part[1] + 1}`
    }
    const said = (match?.[2] ?? this.stderr.trim().split('\n').slice(-2).join(' ')) || `psql exited ${code}`
    return new DatabaseError(
      `The database restore failed${where}: ${said}. The transaction was rolled back: nothing was restored into ${this.database}.`
    )
  }
}

/** One SELECT: each manifest table's index and row count, between markers psql prints. */
function countQuery(tables: readonly ManifestTable[]): string {
  const selects = tables.map((table, index) => `SELECT ${index}, count(*) FROM ${qualifiedName(table)}`)
  return `\\echo ${COUNTS_BEGIN}\n${selects.length > 0 ? `${selects.join('\nUNION ALL ')};\n` : ''}\\echo ${COUNTS_END}\n`
}

/** A target that holds tables of its own (or users) is refused: a restore adds to nothing that is there. */
async function refuseNonEmpty(client: Awaited<ReturnType<typeof connect>>, db: DatabaseUrl): Promise<void> {
  const tables = await userTables(client)
  const { rows } = await client.query<{ users: string | null }>(
    `select case when to_regclass('auth.users') is null then null else (select count(*) from auth.users)::text end as users`
  )
  const users = Number(rows[0]?.users ?? 0)
  if (tables.length === 0 && users === 0) return
  const what = [
    ...(tables.length > 0
      ? [`${tables.length} tables of its own (${tables.slice(0, 3).map(qualifiedName).join(', ')}${tables.length > 3 ? ', ...' : ''})`]
      : []),
    ...(users > 0 ? [`${users} users in auth.users`] : [])
  ].join(' and ')
  throw new DatabaseError(
    `The database at ${db.display} (input 'database-url') is not empty: it has ${what}. A restore goes into a new project or an empty database; nothing was changed. To restore into it anyway, set 'allow-non-empty-database: true'.`
  )
}
