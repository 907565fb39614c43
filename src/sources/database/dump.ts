import { createHash, type Hash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { DatabaseError, messageOf } from '../../errors.js'
import {
  DATA_EXCLUDED_SCHEMAS,
  DATA_EXCLUDED_TABLES,
  dumpedTables,
  MANAGED_ROLES,
  MANAGED_SCHEMAS,
  qualifiedName,
  type DumpedTable
} from '../../postgres/catalog.js'
import { toolPath, type ClientTools } from '../../postgres/clients.js'
import { connect } from '../../postgres/connect.js'
import { partPath, type DatabaseManifest, type ManifestTable, type PartName } from '../../postgres/manifest.js'
import { toolConnectionString, toolEnvironment, type DatabaseUrl } from '../../postgres/url.js'
import { DataFilter, rolesFilter, schemaFilter, type DumpFilter } from './filters.js'
import { runTool } from './tool.js'

/** How long ending the snapshot waits for a count in flight, and for its connection to close. */
const END_WAIT_MS = 1_000

/** pg_dump waits this long for a table's lock (a migration holding it) before it fails, rather than forever. */
const LOCK_WAIT_TIMEOUT = '120s'

/** What the dump reports while it runs, for the state post reads and the progress lines. */
export interface DumpHooks {
  /** A tool started or ended: the pids of those still running (post kills what a killed main left). */
  onTools(pids: number[]): void
  /** Bytes of SQL written so far, all parts. */
  onProgress(bytes: number): void
}

/** The database as preflight found it: where, which server, which tools. */
export interface DatabaseTarget {
  url: DatabaseUrl
  server: { major: number; version: string }
  clients: ClientTools
}

/** One part as it is produced: its bytes in pieces, then its size and SHA-256. */
export interface PartRun {
  name: PartName
  pieces: AsyncIterable<Buffer>
  /** Known once `pieces` has been read to its end. */
  result(): { bytes: number; sha256: string }
}

/**
 * One consistent dump: a transaction that exports its snapshot and stays open until the dump ends,
 * so that pg_dump's schema and data and the row counts all see the same database. roles.sql comes
 * from pg_dumpall (roles are not in a snapshot), schema.sql and data.sql from pg_dump with
 * --snapshot, all three filtered as `supabase db dump` filters them.
 */
export class DatabaseDump {
  private readonly tools = new Set<number>()
  private bytes = 0
  private exporter: pg.Client | undefined
  private snapshot = ''
  private tables: DumpedTable[] = []
  private counting: Promise<ManifestTable[]> | undefined
  private readonly dataFilter = new DataFilter()
  private readonly results = new Map<PartName, { bytes: number; sha256: string }>()
  private readonly createdAt = new Date()

  constructor(
    private readonly target: DatabaseTarget,
    private readonly signal: AbortSignal,
    private readonly hooks: DumpHooks
  ) {}

  /** Opens the snapshot and starts counting each table's rows in it. */
  async begin(): Promise<void> {
    const exporter = await connect(this.target.url, 'dump it')
    this.exporter = exporter
    try {
      await exporter.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
      // As pg_dump does: a row-level security policy must fail the count, not hide rows from it.
      await exporter.query('SET LOCAL row_security = off')
      // A count still waiting (on a lock) when the dump is stopped ends once the server sees the connection gone (PostgreSQL 14+).
      await exporter.query(
        `SELECT pg_catalog.set_config('client_connection_check_interval', '1s', true) WHERE current_setting('server_version_num')::int >= 140000`
      )
      // The counts wait for a table's lock as long as pg_dump does, not forever.
      await exporter.query(`SELECT pg_catalog.set_config('lock_timeout', $1, true)`, [LOCK_WAIT_TIMEOUT])
      const { rows } = await exporter.query<{ id: string }>('SELECT pg_catalog.pg_export_snapshot() AS id')
      this.snapshot = rows[0]?.id ?? ''
      this.tables = await dumpedTables(exporter)
    } catch (error) {
      await this.end()
      throw dumpFailed(error, 'could not start a snapshot')
    }
    this.counting = this.countRows(exporter)
    this.counting.catch(() => {})
  }

  /** The parts in order: run one at a time, each read to its end before the next starts. */
  *parts(): Generator<PartRun> {
    const base = toolConnectionString(this.target.url)
    const common = ['--quote-all-identifiers', '--no-password']
    yield this.run(
      'roles.sql',
      'pg_dumpall',
      ['--roles-only', '--no-role-passwords', '--no-comments', ...common, `--dbname=${base}`],
      rolesFilter()
    )
    yield this.run(
      'schema.sql',
      'pg_dump',
      [
        '--schema-only',
        ...common,
        `--snapshot=${this.snapshot}`,
        `--lock-wait-timeout=${LOCK_WAIT_TIMEOUT}`,
        ...excludes(MANAGED_SCHEMAS, []),
        `--dbname=${base}`
      ],
      schemaFilter()
    )
    yield this.run(
      'data.sql',
      'pg_dump',
      [
        '--data-only',
        ...common,
        `--snapshot=${this.snapshot}`,
        `--lock-wait-timeout=${LOCK_WAIT_TIMEOUT}`,
        ...excludes(DATA_EXCLUDED_SCHEMAS, DATA_EXCLUDED_TABLES),
        `--dbname=${base}`
      ],
      this.dataFilter
    )
  }

  /** Once every part was read: the counts (checked against the rows data.sql holds) and the manifest. */
  async manifest(): Promise<DatabaseManifest> {
    let tables: ManifestTable[]
    try {
      tables = await (this.counting as Promise<ManifestTable[]>)
    } catch (error) {
      throw dumpFailed(error, 'counting the rows in the snapshot failed')
    }
    for (const table of tables) {
      const dumped = this.dataFilter.rows.get(qualifiedName(table)) ?? 0
      if (dumped !== table.rows) {
        throw new DatabaseError(
          `The database dump is not consistent: data.sql holds ${dumped} rows of ${table.schema}.${table.name}, but the snapshot has ${table.rows}. Nothing was stored; run the backup again, and report this if it repeats.`
        )
      }
    }
    const { clients, server } = this.target
    return {
      manifestVersion: 1,
      createdAt: this.createdAt.toISOString(),
      database: this.target.url.database,
      server: { version: server.version },
      client: { version: clients.version, pgDump: clients.versionText },
      parts: [...this.results].map(([name, result]) => ({ path: partPath(name), ...result })),
      tables,
      excluded: {
        schemas: [...MANAGED_SCHEMAS],
        dataSchemas: [...DATA_EXCLUDED_SCHEMAS],
        dataTables: [...DATA_EXCLUDED_TABLES],
        roles: [...MANAGED_ROLES]
      }
    }
  }

  /** When the dump started, for the entries' mtime. */
  get startedAt(): Date {
    return this.createdAt
  }

  /**
   * Ends the snapshot's transaction and its connection; idempotent. A count may still be waiting
   * (a table locked by someone else, a stopped dump): its connection is then closed without waiting.
   */
  async end(): Promise<void> {
    const exporter = this.exporter
    this.exporter = undefined
    if (!exporter) return
    const counted = await Promise.race([
      this.counting?.then(
        () => true,
        () => true
      ) ?? Promise.resolve(true),
      sleep(END_WAIT_MS, false, { ref: false })
    ])
    if (counted) await exporter.query('ROLLBACK').catch(() => {})
    await Promise.race([exporter.end().catch(() => {}), sleep(END_WAIT_MS, undefined, { ref: false })])
  }

  private async countRows(exporter: pg.Client): Promise<ManifestTable[]> {
    const counted: ManifestTable[] = []
    for (const table of this.tables) {
      const { rows } = await exporter.query<{ rows: string }>(`SELECT count(*) AS rows FROM ${qualifiedName(table)}`)
      counted.push({ ...table, rows: Number(rows[0]?.rows ?? 0) })
    }
    return counted
  }

  private run(name: PartName, tool: 'pg_dump' | 'pg_dumpall', args: string[], filter: DumpFilter): PartRun {
    const hash = createHash('sha256')
    let bytes = 0
    const result = (): { bytes: number; sha256: string } => {
      const known = this.results.get(name)
      if (!known) throw new Error(`${name} has not been read to its end`)
      return known
    }
    const self = this
    async function* pieces(): AsyncGenerator<Buffer> {
      const stop = new AbortController()
      const signal = AbortSignal.any([self.signal, stop.signal])
      const describe = `${tool} (${partPath(name)})`
      const started = runTool(toolPath(self.target.clients, tool), args, toolEnvironment(self.target.url), signal, describe)
      self.toolStarted(started.pid)
      let finished = false
      try {
        for await (const chunk of started.stdout) {
          yield* self.counted(filter.push(chunk as Buffer), hash, count => (bytes += count))
        }
        await started.exited
        yield* self.counted(filter.end(), hash, count => (bytes += count))
        self.results.set(name, { bytes, sha256: hash.digest('hex') })
        finished = true
      } catch (error) {
        if (self.signal.aborted) throw self.signal.reason
        throw dumpFailed(error)
      } finally {
        if (!finished) stop.abort()
        await started.exited.catch(() => {})
        self.toolEnded(started.pid)
      }
    }
    return { name, pieces: pieces(), result }
  }

  private *counted(pieces: Buffer[], hash: Hash, count: (bytes: number) => void): Generator<Buffer> {
    for (const piece of pieces) {
      hash.update(piece)
      count(piece.length)
      this.bytes += piece.length
      this.hooks.onProgress(this.bytes)
      yield piece
    }
  }

  private toolStarted(pid: number): void {
    this.tools.add(pid)
    this.hooks.onTools([...this.tools])
  }

  private toolEnded(pid: number): void {
    this.tools.delete(pid)
    this.hooks.onTools([...this.tools])
  }
}

/** pg_dump's options that leave out schemas and tables. */
function excludes(schemas: readonly string[], tables: readonly string[]): string[] {
  return [...schemas.map(schema => `--exclude-schema=${schema}`), ...tables.map(table => `--exclude-table=${table}`)]
}

/** Any failure of the dump, as the contract words it: "The database dump failed: ...". */
export function dumpFailed(error: unknown, context?: string): DatabaseError {
  if (error instanceof DatabaseError && error.message.startsWith('The database dump failed')) return error
  return new DatabaseError(`The database dump failed: ${context ? `${context}: ` : ''}${messageOf(error)}`, { cause: error })
}
