import type pg from 'pg'

/**
 * What Supabase manages and its own backups leave out, as the Supabase CLI's `db dump` has it
 * (supabase/cli, pkg/migration/dump.go). A restore target (a new Supabase project) has these
 * already, so a dump that carried them would clash with them.
 *
 * Schemas left out of schema.sql: created by the platform's image or by extensions.
 */
export const MANAGED_SCHEMAS = [
  'information_schema',
  'pg_*',
  '_analytics',
  '_realtime',
  '_supavisor',
  'auth',
  'etl',
  'extensions',
  'pgbouncer',
  'realtime',
  'storage',
  'supabase_functions',
  'supabase_migrations',
  'cron',
  'dbdev',
  'graphql',
  'graphql_public',
  'net',
  'pgmq',
  'pgsodium',
  'pgsodium_masks',
  'pgtle',
  'repack',
  'tiger',
  'tiger_data',
  'timescaledb_*',
  '_timescaledb_*',
  'topology',
  'vault'
] as const

/**
 * Schemas left out of data.sql: the same, but for the ones whose rows are the project's own data
 * (auth's users, storage's object metadata, cron's jobs, queues), which a restore must bring back.
 */
export const DATA_EXCLUDED_SCHEMAS = MANAGED_SCHEMAS.filter(
  schema => !['auth', 'storage', 'supabase_functions', 'cron', 'net', 'pgmq'].includes(schema)
)

/** Tables whose rows the platform writes itself (its migration history): left out of data.sql. */
export const DATA_EXCLUDED_TABLES = ['auth.schema_migrations', 'storage.migrations', 'supabase_functions.migrations'] as const

/** Roles Supabase creates in every project: not created or altered by roles.sql (CLI's reservedRoles). */
export const MANAGED_ROLES = [
  'anon',
  'authenticated',
  'authenticator',
  'cli_login_.*',
  'dashboard_user',
  'pgbouncer',
  'postgres',
  'service_role',
  'supabase_.*',
  'pgsodium_keyholder',
  'pgsodium_keyiduser',
  'pgsodium_keymaker',
  'pgtle_admin'
] as const

/** Settings of managed roles that roles.sql keeps (`ALTER ROLE "authenticator" SET "pgrst.db_schemas" ...`). */
export const KEPT_ROLE_SETTINGS = ['pgaudit.*', 'pgrst.*', 'session_replication_role', 'statement_timeout', 'track_io_timing'] as const

/** A pg_dump name pattern (`*` any characters, `?` one, the rest literal) as an anchored regular expression's source. */
export function patternSource(pattern: string): string {
  return pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
}

/** One regular expression matching any of the names the patterns match, whole. */
export function anyOf(patterns: readonly string[]): RegExp {
  return new RegExp(`^(?:${patterns.map(patternSource).join('|')})$`)
}

/** A table whose rows data.sql holds. */
export interface DumpedTable {
  schema: string
  name: string
}

export function qualifiedName(table: DumpedTable): string {
  return `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/**
 * The tables pg_dump writes rows for with DATA_EXCLUDED_SCHEMAS and DATA_EXCLUDED_TABLES: ordinary
 * tables (a partitioned table's rows are its partitions'), not members of an extension, in
 * schemas the exclusions leave. Read in the caller's transaction, so in its snapshot.
 */
export async function dumpedTables(client: pg.Client): Promise<DumpedTable[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name ${DUMPED_TABLES} order by 1, 2`,
    dumpedTablesParameters()
  )
  return rows
}

/**
 * What the dumped tables take on disk (without their indexes): how much a spool of data.sql may need.
 * Measuring a table takes its lock; a table that a migration holds is estimated from the catalog
 * instead (pages at the last vacuum), so that the preflight never waits behind someone else's lock.
 */
export async function dumpedBytes(client: pg.Client): Promise<number> {
  try {
    await client.query(`select pg_catalog.set_config('lock_timeout', '2s', false)`)
    return await sumOverDumpedTables(client, 'pg_catalog.pg_table_size(c.oid)')
  } catch (error) {
    if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error
    return await sumOverDumpedTables(client, `(c.relpages + coalesce(t.relpages, 0))::bigint * current_setting('block_size')::bigint`)
  } finally {
    await client.query(`select pg_catalog.set_config('lock_timeout', '0', false)`).catch(() => {})
  }
}

const LOCK_NOT_AVAILABLE = '55P03'

/** The sum of `expression` over the dumped tables (`c`, with `t` its TOAST table). */
async function sumOverDumpedTables(client: pg.Client, expression: string): Promise<number> {
  const { rows } = await client.query<{ total: string }>(
    `select coalesce(sum(${expression}), 0) as total ${DUMPED_TABLES}`,
    dumpedTablesParameters()
  )
  return Number(rows[0]?.total ?? 0)
}

const DUMPED_TABLES = `
   from pg_catalog.pg_class c
   join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   left join pg_catalog.pg_class t on t.oid = c.reltoastrelid
  where c.relkind = 'r'
    and not exists (select 1 from pg_catalog.pg_depend d
                     where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    and n.nspname !~ $1
    and (n.nspname || '.' || c.relname) <> all($2::text[])`

function dumpedTablesParameters(): [string, string[]] {
  return [anyOf(DATA_EXCLUDED_SCHEMAS).source, [...DATA_EXCLUDED_TABLES]]
}

/** Tables of the project's own schemas (those schema.sql carries): a restore target that has any is not empty. */
export async function userTables(client: pg.Client): Promise<DumpedTable[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p')
        and n.nspname !~ $1
      order by 1, 2`,
    [anyOf(MANAGED_SCHEMAS).source]
  )
  return rows
}

/** The server's version: its major (e.g. 15) and what it says (e.g. 15.18). */
export async function serverVersion(client: pg.Client): Promise<{ major: number; version: string }> {
  const { rows } = await client.query<{ num: string; version: string }>(
    `select current_setting('server_version_num') as num, current_setting('server_version') as version`
  )
  const row = rows[0] ?? { num: '0', version: 'unknown' }
  return { major: Math.floor(Number(row.num) / 10_000), version: row.version.split(' ')[0] ?? row.version }
}
