/**
 * A Postgres connection string (`database-url`), split into what the tools need: the libpq
 * parameters without the password (for pg_dump, pg_dumpall and psql, which get the password in
 * PGPASSWORD, never on a command line), the password, and a form safe to print.
 */

/** The connection as libpq takes it, password apart. */
export interface DatabaseUrl {
  host: string
  port: number
  user: string
  database: string
  /** '' when the URL has none (trust or .pgpass). */
  password: string
  /** libpq's sslmode; libpq's default is prefer. */
  sslMode: SslMode
  /** Other query parameters (sslrootcert, application_name, options...), passed on as they are. */
  parameters: [string, string][]
  /** `postgresql://user@host:port/database`, for messages. */
  display: string
  /** Which Supabase connection this is, from the host and port: what a connection error should suggest. */
  supabase: SupabaseConnection
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const
export type SslMode = (typeof SSL_MODES)[number]

/**
 * Supabase's connection strings: the direct host (IPv6 only unless the project bought the IPv4
 * add-on), the shared pooler in session mode (5432) or transaction mode (6543), and the dedicated
 * pooler on the direct host's port 6543, in transaction mode.
 */
export type SupabaseConnection = 'direct' | 'session-pooler' | 'transaction-pooler' | 'other'

/** Port of Supabase's pooler in transaction mode: one session is not kept, so pg_dump's snapshot cannot be either. */
export const TRANSACTION_POOLER_PORT = 6543

export class DatabaseUrlError extends Error {}

/** Parses `postgres://` or `postgresql://` URLs; throws DatabaseUrlError with a sentence that never repeats the password. */
export function parseDatabaseUrl(raw: string): DatabaseUrl {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new DatabaseUrlError(
      'must be a Postgres connection string like postgresql://postgres.<project-ref>:<password>@aws-0-<region>.pooler.supabase.com:5432/postgres (Connect (top of the project dashboard) > Session pooler).'
    )
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new DatabaseUrlError(`must start with postgresql:// (a Postgres connection string), not ${url.protocol}//.`)
  }
  if (url.hostname === '') throw new DatabaseUrlError('has no host: it should look like postgresql://user:password@host:5432/postgres.')
  const port = url.port === '' ? 5432 : Number(url.port)
  const user = decode(url.username)
  if (user === '') throw new DatabaseUrlError('has no user: it should look like postgresql://user:password@host:5432/postgres.')
  const database = decode(url.pathname.replace(/^\//, '')) || user
  const parameters = queryParameters(url.search)
  // libpq takes a password given as a parameter too (the last one wins): it must not reach the tools' command line.
  const passwordParameter = parameters.filter(([name]) => name === 'password').at(-1)?.[1]
  // As libpq reads a repeated parameter: the last one wins (the pg client would take it too).
  const sslParameter = parameters.filter(([name]) => name === 'sslmode').at(-1)?.[1] ?? 'prefer'
  const sslMode = SSL_MODES.find(mode => mode === sslParameter)
  if (!sslMode) throw new DatabaseUrlError(`has sslmode=${sslParameter}; use one of ${SSL_MODES.join(', ')}.`)
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  return {
    host,
    port,
    user,
    database,
    password: passwordParameter ?? decode(url.password),
    sslMode,
    parameters: parameters.filter(([name]) => name !== 'sslmode' && name !== 'password'),
    display: `postgresql://${encodeURIComponent(user)}@${url.host}/${encodeURIComponent(database)}`,
    supabase: supabaseConnection(host, port)
  }
}

/** The libpq connection string for the tools, without the password. */
export function toolConnectionString(db: DatabaseUrl): string {
  // Percent-encoded, not URLSearchParams' form encoding: libpq reads a + as a plus, not a space.
  const query = [['sslmode', db.sslMode], ...db.parameters].map(pair => pair.map(encodeURIComponent).join('=')).join('&')
  const host = db.host.includes(':') ? `[${db.host}]` : db.host
  return `postgresql://${encodeURIComponent(db.user)}@${host}:${db.port}/${encodeURIComponent(db.database)}?${query}`
}

/** Environment for a Postgres tool: the password, a connect timeout, and nothing from the runner's own PG* variables. */
export function toolEnvironment(db: DatabaseUrl, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(base).filter(([name]) => !name.startsWith('PG')))
  return { ...env, PGPASSWORD: db.password, PGCONNECT_TIMEOUT: '15', PGAPPNAME: 'supabase-s3-backup' }
}

/** What to mask of a `database-url` input, valid or not: the whole value, and its password as given and decoded. */
export function databaseUrlSecrets(raw: string): string[] {
  if (raw === '') return []
  let db: DatabaseUrl | undefined
  try {
    db = parseDatabaseUrl(raw)
  } catch {
    // Not a URL: the whole value is masked.
  }
  return secretForms(raw, db)
}

/** The password as written in the URL too (percent-encoded), so that both forms are masked. */
function secretForms(raw: string, db: DatabaseUrl | undefined): string[] {
  const forms = [raw]
  if (db?.password) forms.push(db.password, encodeURIComponent(db.password))
  try {
    const url = new URL(raw)
    if (url.password) forms.push(url.password, decode(url.password))
    for (const [name, value] of queryParameters(url.search)) if (name === 'password') forms.push(value, encodeURIComponent(value))
  } catch {
    // Not a URL: the whole value is masked.
  }
  return [...new Set(forms.filter(form => form.length > 0))]
}

function supabaseConnection(host: string, port: number): SupabaseConnection {
  // The direct host's port 6543 is the project's dedicated pooler (PgBouncer), in transaction mode too.
  if (/^db\.[a-z0-9]+\.supabase\.co$/i.test(host)) return port === TRANSACTION_POOLER_PORT ? 'transaction-pooler' : 'direct'
  if (/\.pooler\.supabase\.com$/i.test(host)) return port === TRANSACTION_POOLER_PORT ? 'transaction-pooler' : 'session-pooler'
  return 'other'
}

/** The query's parameters as libpq reads them: %XX decoded, and a + left a plus (not form encoding's space). */
function queryParameters(search: string): [string, string][] {
  return search
    .replace(/^\?/, '')
    .split('&')
    .filter(pair => pair !== '')
    .map(pair => {
      const equals = pair.indexOf('=')
      return equals < 0 ? [decode(pair), ''] : [decode(pair.slice(0, equals)), decode(pair.slice(equals + 1))]
    })
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
