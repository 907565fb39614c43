import { readFileSync } from 'node:fs'
import pg from 'pg'
import { DatabaseError } from '../errors.js'
import type { DatabaseUrl } from './url.js'

/** Connecting gives up after this long: a host that does not answer says so before the runner's step timeout. */
const CONNECT_TIMEOUT_MS = 15_000

/**
 * A connection with libpq's meaning of sslmode (node-postgres reads `require` as verify-full):
 * disable: plain; allow/prefer: TLS if the server offers it, without checking its certificate, else
 * plain; require: TLS, certificate not checked; verify-ca / verify-full: checked against
 * sslrootcert (or the system's CAs), the host name too for verify-full. Errors are DatabaseErrors
 * whose message says what to change.
 */
export async function connect(db: DatabaseUrl, purpose: string): Promise<pg.Client> {
  const tryPlainAfter = db.sslMode === 'allow' || db.sslMode === 'prefer'
  try {
    return await open(db, db.sslMode === 'disable' ? false : tlsOptions(db))
  } catch (error) {
    if (tryPlainAfter && /does not support SSL/i.test(String((error as Error).message))) {
      try {
        return await open(db, false)
      } catch (plainError) {
        throw connectionError(plainError, db, purpose)
      }
    }
    throw connectionError(error, db, purpose)
  }
}

async function open(db: DatabaseUrl, ssl: pg.ClientConfig['ssl']): Promise<pg.Client> {
  const client = new pg.Client({
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    database: db.database,
    ssl,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'supabase-s3-backup'
  })
  // A connection that drops later (the server restarts) must reject the query in flight, not crash the process.
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
  return client
}

function tlsOptions(db: DatabaseUrl): pg.ClientConfig['ssl'] {
  if (db.sslMode !== 'verify-ca' && db.sslMode !== 'verify-full') return { rejectUnauthorized: false }
  const rootCert = db.parameters.find(([name]) => name === 'sslrootcert')?.[1]
  const ca = rootCert && rootCert !== 'system' ? readFileSync(rootCert, 'utf8') : undefined
  return {
    rejectUnauthorized: true,
    ...(ca ? { ca } : {}),
    ...(db.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {})
  }
}

interface PgError {
  code?: string
  message?: string
  errno?: number
  syscall?: string
}

/**
 * Why the connection failed, in a sentence a user can act on: the cases Supabase users meet (an
 * IPv6-only direct host from a runner without IPv6, the pooler's tenant name, a wrong password,
 * SSL demands) get their own. The password is never in it: no message here repeats the URL's.
 */
export function connectionError(error: unknown, db: DatabaseUrl, purpose: string): DatabaseError {
  const failure = (error ?? {}) as PgError
  const code = failure.code ?? ''
  const message = String(failure.message ?? error)
  const where = `${db.host}:${db.port}`
  const what = `Could not connect to the database at ${where} (input 'database-url') to ${purpose}`
  const say = (sentence: string): DatabaseError => new DatabaseError(`${what}: ${sentence}`, { cause: error })

  if (db.supabase === 'direct' && ['ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
    return say(
      `${db.host} is Supabase's direct connection, which has an IPv6 address only, and this runner has no IPv6 (GitHub-hosted runners have none) (${code}). Use the Session pooler connection string instead: Connect (top of the project dashboard) > Session pooler, postgresql://postgres.<project-ref>:<password>@aws-0-<region>.pooler.supabase.com:5432/postgres.`
    )
  }
  if (code === '28P01' || /password authentication failed|SASL|SCRAM/i.test(message)) {
    return say(
      `the server refused the password for user "${db.user}" (${code || 'authentication failed'}). Check the password in the connection string (Project Settings > Database > Reset database password), and percent-encode characters such as @, :, / or # in it.`
    )
  }
  if (/tenant or user not found/i.test(message)) {
    return say(
      `Supabase's pooler does not know the user "${db.user}". On the pooler the user is postgres.<project-ref>, and the host must be the one shown for your project (aws-0-<region> or aws-1-<region>): copy the Session pooler string from Connect (top of the project dashboard).`
    )
  }
  if (code === '3D000') return say(`the database "${db.database}" does not exist on that server. Supabase's is called postgres.`)
  if (/does not support SSL/i.test(message)) {
    return say(
      `the server does not accept TLS, but the connection string asks for it (sslmode=${db.sslMode}). Remove sslmode, or set sslmode=prefer.`
    )
  }
  if (/SSL connection is required|no pg_hba\.conf entry.*(SSL off|no encryption)|SSL off/i.test(message)) {
    return say('the server accepts TLS connections only. Add ?sslmode=require to the connection string.')
  }
  if (/self[- ]signed|unable to verify|certificate/i.test(message)) {
    return say(
      `the server's TLS certificate could not be verified (sslmode=${db.sslMode}: ${clip(message)}). With Supabase, download the project's CA certificate (Project Settings > Database > SSL) and add sslrootcert=<its path>, or use sslmode=require.`
    )
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return say(`the host ${db.host} does not resolve (${code}). Check the host in the connection string.`)
  if (code === 'ECONNREFUSED') return say(`nothing accepts connections at ${where} (ECONNREFUSED). Check the host and port.`)
  if (['ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH'].includes(code) || /timeout/i.test(message)) {
    return say(
      `no answer from ${where} (${code || 'timed out'}). Check the host, the port, and that the database accepts connections from this runner (network restrictions).`
    )
  }
  if (code === '28000') return say(`the server refused the connection: ${clip(message)}.`)
  return say(`${clip(message)}${code ? ` (${code})` : ''}.`)
}

function clip(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > 300 ? `${line.slice(0, 297)}...` : line
}
