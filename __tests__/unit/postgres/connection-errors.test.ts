// Why a connection failed, as connectionError words it: each failure a Supabase user meets (errors
// shaped as pg and Node raise them) gets a sentence naming the cause and the fix, and none of them
// repeats the password.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DatabaseError } from '../../../src/errors.js'
import { connectionError } from '../../../src/postgres/connect.js'
import { parseDatabaseUrl } from '../../../src/postgres/url.js'

const PASSWORD = 'Sup3r-s3cret'
const REF = 'abcdefghijklmnopqrst'
const DIRECT = parseDatabaseUrl(`postgresql://postgres:${PASSWORD}@db.${REF}.supabase.co:5432/postgres`)
const SESSION = parseDatabaseUrl(`postgresql://postgres.${REF}:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:5432/postgres`)
const LOCAL = parseDatabaseUrl(`postgresql://app:${PASSWORD}@10.0.0.5:5433/appdb?sslmode=disable`)

/** A Node socket or DNS error, as net and dns raise it. */
function systemError(code: string, syscall: string, host: string, port?: number): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${syscall} ${code} ${host}${port ? `:${port}` : ''}`)
  error.code = code
  error.syscall = syscall
  error.errno = -1
  return error
}

/** A server's ErrorResponse, as pg's DatabaseError carries it: severity, SQLSTATE, message. */
function serverError(code: string, message: string): Error & { code: string; severity: string } {
  return Object.assign(new Error(message), { code, severity: 'FATAL' })
}

function sentence(error: unknown, db = DIRECT): string {
  const mapped = connectionError(error, db, 'back it up')
  assert.ok(mapped instanceof DatabaseError)
  assert.equal(mapped.cause, error)
  assert.ok(!mapped.message.includes(PASSWORD), `"${mapped.message}" holds the password`)
  return mapped.message
}

describe('connectionError', () => {
  it('starts with where and why it connected, naming the input', () => {
    assert.match(
      sentence(systemError('ECONNREFUSED', 'connect', '10.0.0.5', 5433), LOCAL),
      /^Could not connect to the database at 10\.0\.0\.5:5433 \(input 'database-url'\) to back it up: /
    )
  })

  for (const [code, syscall] of [
    ['ENETUNREACH', 'connect'],
    ['EHOSTUNREACH', 'connect'],
    ['EADDRNOTAVAIL', 'connect'],
    ['ENOTFOUND', 'getaddrinfo'],
    ['EAI_AGAIN', 'getaddrinfo']
  ] as const) {
    it(`${code} on the direct host: it is IPv6 only, use the Session pooler`, () => {
      const message = sentence(systemError(code, syscall, `2a05:d014::1`, 5432))
      assert.match(message, new RegExp(`db\\.${REF}\\.supabase\\.co is Supabase's direct connection, which has an IPv6 address only`))
      assert.match(message, new RegExp(`\\(${code}\\)`))
      assert.match(message, /Use the Session pooler connection string instead: Connect \(top of the project dashboard\) > Session pooler/)
    })
  }

  it('the same network errors elsewhere say the host does not resolve, or does not answer', () => {
    assert.match(
      sentence(systemError('ENOTFOUND', 'getaddrinfo', 'typo.example'), LOCAL),
      /the host 10\.0\.0\.5 does not resolve \(ENOTFOUND\)\. Check the host/
    )
    assert.match(sentence(systemError('EAI_AGAIN', 'getaddrinfo', 'x'), SESSION), /does not resolve \(EAI_AGAIN\)/)
    const unreachable = sentence(systemError('ENETUNREACH', 'connect', '10.0.0.5', 5433), LOCAL)
    assert.match(unreachable, /no answer from 10\.0\.0\.5:5433 \(ENETUNREACH\)\. Check the host, the port/)
    assert.doesNotMatch(unreachable, /IPv6/)
    assert.match(
      sentence(new Error('Connection terminated due to connection timeout'), LOCAL),
      /no answer from 10\.0\.0\.5:5433 \(timed out\)/
    )
  })

  it('28P01: the password was refused; check it, reset it, percent-encode it', () => {
    const message = sentence(serverError('28P01', 'password authentication failed for user "postgres"'))
    assert.match(message, /the server refused the password for user "postgres" \(28P01\)/)
    assert.match(message, /Reset database password/)
    assert.match(message, /percent-encode characters such as @, :, \/ or #/)
  })

  it('a SCRAM failure in pg itself (no password given) reads as a refused password', () => {
    const message = sentence(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), SESSION)
    assert.match(message, new RegExp(`the server refused the password for user "postgres\\.${REF}" \\(authentication failed\\)`))
  })

  it('3D000: the database does not exist; Supabase calls it postgres', () => {
    const message = sentence(serverError('3D000', 'database "appdb" does not exist'), LOCAL)
    assert.match(message, /the database "appdb" does not exist on that server\. Supabase's is called postgres\./)
  })

  it("the pooler's 'Tenant or user not found': the user is postgres.<project-ref>, copy the Session pooler string", () => {
    const message = sentence(
      serverError('XX000', 'Tenant or user not found'),
      parseDatabaseUrl(`postgresql://postgres:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:5432/postgres`)
    )
    assert.match(message, /Supabase's pooler does not know the user "postgres"\. On the pooler the user is postgres\.<project-ref>/)
    assert.match(message, /copy the Session pooler string from Connect \(top of the project dashboard\)/)
  })

  it('a server without TLS when the URL asks for it: remove sslmode or set prefer', () => {
    const require = parseDatabaseUrl(`postgresql://app:${PASSWORD}@10.0.0.5/appdb?sslmode=require`)
    const message = sentence(new Error('The server does not support SSL connections'), require)
    assert.match(
      message,
      /the server does not accept TLS, but the connection string asks for it \(sslmode=require\)\. Remove sslmode, or set sslmode=prefer\./
    )
  })

  for (const text of [
    'no pg_hba.conf entry for host "10.0.0.9", user "app", database "appdb", no encryption',
    'no pg_hba.conf entry for host "10.0.0.9", user "app", database "appdb", SSL off',
    'SSL connection is required. Please specify SSL options and retry.'
  ]) {
    it(`a server that requires TLS ('${text.slice(0, 40)}...'): add sslmode=require`, () => {
      const message = sentence(serverError('28000', text), LOCAL)
      assert.match(message, /the server accepts TLS connections only\. Add \?sslmode=require to the connection string\./)
    })
  }

  it("a certificate that does not verify: Supabase's CA as sslrootcert, or sslmode=require", () => {
    const verify = parseDatabaseUrl(
      `postgresql://postgres.${REF}:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=verify-full`
    )
    const error = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' })
    const message = sentence(error, verify)
    assert.match(
      message,
      /the server's TLS certificate could not be verified \(sslmode=verify-full: self-signed certificate in certificate chain\)/
    )
    assert.match(message, /add sslrootcert=<its path>, or use sslmode=require/)
  })

  it('ECONNREFUSED: nothing listens there; check the host and port', () => {
    assert.match(
      sentence(systemError('ECONNREFUSED', 'connect', '10.0.0.5', 5433), LOCAL),
      /nothing accepts connections at 10\.0\.0\.5:5433 \(ECONNREFUSED\)\. Check the host and port\./
    )
  })

  it('another pg_hba refusal (28000) and anything else pass the server on its own words, clipped to one line', () => {
    assert.match(
      sentence(serverError('28000', 'no pg_hba.conf entry for host "10.0.0.9", user "app", database "appdb", SSL encryption'), LOCAL),
      /the server refused the connection: no pg_hba\.conf entry .*SSL encryption\.$/
    )
    const long = sentence(serverError('53300', `sorry, too many clients already\n${'x'.repeat(400)}`), LOCAL)
    assert.match(long, /: sorry, too many clients already x+\.\.\. \(53300\)\.$/)
    assert.ok(long.length < 450)
  })

  it('no sentence repeats the password, whichever connection kind it is for', () => {
    for (const db of [DIRECT, SESSION, LOCAL]) {
      const errors = [
        serverError('28P01', 'password authentication failed for user "postgres"'),
        serverError('3D000', 'database "x" does not exist'),
        systemError('ENETUNREACH', 'connect', 'h', 5432),
        new Error('The server does not support SSL connections')
      ]
      for (const error of errors) sentence(error, db)
    }
  })
})
