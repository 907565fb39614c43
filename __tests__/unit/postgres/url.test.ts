// database-url: what parseDatabaseUrl takes and refuses, which Supabase connection it is, and how
// the tools get it: the password in PGPASSWORD only, never on a command line or in a message.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseBackupInputs, type InputName } from '../../../src/backup/inputs.js'
import { InputError } from '../../../src/errors.js'
import {
  databaseUrlSecrets,
  DatabaseUrlError,
  parseDatabaseUrl,
  SSL_MODES,
  toolConnectionString,
  toolEnvironment
} from '../../../src/postgres/url.js'

const PASSWORD = 'Sup3r-s3cret'
const REF = 'abcdefghijklmnopqrst'

function refusal(raw: string): string {
  try {
    parseDatabaseUrl(raw)
  } catch (error) {
    assert.ok(error instanceof DatabaseUrlError, `expected DatabaseUrlError, got ${String(error)}`)
    return error.message
  }
  assert.fail(`expected ${raw} to be refused`)
}

/** The backup's inputs with only database-url varied: the problem the input gets. */
function inputProblem(raw: string): string | undefined {
  const values: Partial<Record<InputName, string>> = { bucket: 'my-backups', 'database-url': raw }
  try {
    parseBackupInputs(name => values[name] ?? '')
  } catch (error) {
    assert.ok(error instanceof InputError, String(error))
    return error.message
  }
  return undefined
}

describe('parseDatabaseUrl', () => {
  for (const scheme of ['postgres', 'postgresql']) {
    it(`takes ${scheme}:// with host, port, user, database and password`, () => {
      const db = parseDatabaseUrl(`${scheme}://postgres.${REF}:${PASSWORD}@aws-0-eu-west-1.pooler.supabase.com:5432/postgres`)
      assert.equal(db.host, 'aws-0-eu-west-1.pooler.supabase.com')
      assert.equal(db.port, 5432)
      assert.equal(db.user, `postgres.${REF}`)
      assert.equal(db.database, 'postgres')
      assert.equal(db.password, PASSWORD)
      assert.equal(db.sslMode, 'prefer')
      assert.deepEqual(db.parameters, [])
      assert.equal(db.display, `postgresql://postgres.${REF}@aws-0-eu-west-1.pooler.supabase.com:5432/postgres`)
    })
  }

  it('defaults the port to 5432 and the database to the user, as libpq does; a URL without a password has none', () => {
    const db = parseDatabaseUrl('postgresql://alice@db.example.com')
    assert.equal(db.port, 5432)
    assert.equal(db.database, 'alice')
    assert.equal(db.password, '')
  })

  it('percent-decodes the user, the password and the database', () => {
    const db = parseDatabaseUrl('postgresql://us%40er:p%40ss%3Aw%2Fo%23rd@host/my%20db')
    assert.equal(db.user, 'us@er')
    assert.equal(db.password, 'p@ss:w/o#rd')
    assert.equal(db.database, 'my db')
  })

  it('takes an IPv6 host without its brackets', () => {
    const db = parseDatabaseUrl('postgresql://u:p@[2001:db8::1]:6000/d')
    assert.equal(db.host, '2001:db8::1')
    assert.equal(db.port, 6000)
  })

  for (const mode of SSL_MODES) {
    it(`takes sslmode=${mode}, and keeps it out of the other parameters`, () => {
      const db = parseDatabaseUrl(`postgresql://u:p@h/d?sslmode=${mode}&application_name=x`)
      assert.equal(db.sslMode, mode)
      assert.deepEqual(db.parameters, [['application_name', 'x']])
    })
  }

  it('takes the last sslmode when it is given twice, as libpq does', () => {
    assert.equal(parseDatabaseUrl('postgresql://u:p@h/d?sslmode=disable&sslmode=require').sslMode, 'require')
  })

  it('refuses an sslmode libpq does not know, naming the ones it does', () => {
    assert.match(
      refusal('postgresql://u:p@h/d?sslmode=true'),
      /sslmode=true; use one of disable, allow, prefer, require, verify-ca, verify-full/
    )
  })

  it('passes the other parameters on, decoded as libpq decodes them (%XX, and a + stays a plus)', () => {
    const db = parseDatabaseUrl(
      'postgresql://u:p@h/d?options=-c%20search_path%3Dapp&application_name=a+b&sslrootcert=/etc/ca%20dir/root.crt'
    )
    assert.deepEqual(db.parameters, [
      ['options', '-c search_path=app'],
      ['application_name', 'a+b'],
      ['sslrootcert', '/etc/ca dir/root.crt']
    ])
  })

  it('takes a password given as ?password= (the last one wins, as in libpq), and passes it on to no tool', () => {
    const db = parseDatabaseUrl(`postgresql://u:old@h/d?password=first&password=${PASSWORD}&connect_timeout=5`)
    assert.equal(db.password, PASSWORD)
    assert.deepEqual(db.parameters, [['connect_timeout', '5']])
    assert.doesNotMatch(toolConnectionString(db), /password|old|first|Sup3r/)
  })

  const refused: [string, string, RegExp][] = [
    [
      'a libpq key=value string',
      `host=db.example.com user=postgres password=${PASSWORD} dbname=postgres`,
      /must be a Postgres connection string like postgresql:\/\//
    ],
    ['an http URL', `https://postgres:${PASSWORD}@db.example.com/postgres`, /must start with postgresql:\/\/ .*not https:\/\//],
    ['a MySQL URL', `mysql://root:${PASSWORD}@db.example.com:3306/app`, /must start with postgresql:\/\//],
    ['a URL without a user', `postgresql://:${PASSWORD}@db.example.com/postgres`, /has no user/],
    ['a URL without a host', `postgresql://postgres:${PASSWORD}@/postgres`, /must be a Postgres connection string like/],
    ['a URL with an empty authority (a Unix socket)', 'postgresql:///postgres', /has no host/],
    [
      'a password with an unencoded /',
      `postgresql://postgres:Sup3r/s3cret@db.example.com:5432/postgres`,
      /must be a Postgres connection string like/
    ],
    [
      'a password with an unencoded #',
      `postgresql://postgres:Sup3r#s3cret@db.example.com:5432/postgres`,
      /must be a Postgres connection string like/
    ]
  ]
  for (const [what, raw, message] of refused) {
    it(`refuses ${what}, naming the input database-url, never repeating the password`, () => {
      assert.match(refusal(raw), message)
      const problem = inputProblem(raw)
      assert.ok(problem, 'the backup inputs accepted it')
      assert.match(problem, /^Input 'database-url': /)
      for (const secret of [PASSWORD, 'Sup3r', 's3cret']) assert.ok(!problem.includes(secret), `"${problem}" holds the password`)
    })
  }
})

describe('Supabase connection kinds', () => {
  const kinds: [string, string, string][] = [
    ['the direct host', `postgresql://postgres:p@db.${REF}.supabase.co:5432/postgres`, 'direct'],
    ['the session pooler (5432)', `postgresql://postgres.${REF}:p@aws-0-us-east-1.pooler.supabase.com:5432/postgres`, 'session-pooler'],
    [
      'the session pooler on a newer cluster (aws-1)',
      `postgresql://postgres.${REF}:p@aws-1-eu-central-1.pooler.supabase.com/postgres`,
      'session-pooler'
    ],
    [
      'the transaction pooler (6543)',
      `postgresql://postgres.${REF}:p@aws-0-us-east-1.pooler.supabase.com:6543/postgres`,
      'transaction-pooler'
    ],
    ['the dedicated pooler (direct host, 6543)', `postgresql://postgres:p@db.${REF}.supabase.co:6543/postgres`, 'transaction-pooler'],
    ['any other host', 'postgresql://postgres:p@localhost:5432/postgres', 'other'],
    ['a look-alike host', `postgresql://postgres:p@db.${REF}.supabase.co.evil.example:5432/postgres`, 'other']
  ]
  for (const [what, raw, kind] of kinds) {
    it(`${what} is ${kind}`, () => {
      assert.equal(parseDatabaseUrl(raw).supabase, kind)
    })
  }

  it('the inputs refuse both transaction-mode poolers, pointing to the Session pooler', () => {
    for (const raw of [kinds[3]?.[1], kinds[4]?.[1]]) {
      assert.match(
        inputProblem(raw ?? '') ?? '',
        /^Input 'database-url': points at Supabase's pooler in transaction mode \(port 6543\).*Session pooler/
      )
    }
    assert.equal(inputProblem(kinds[1]?.[1] ?? ''), undefined)
  })
})

describe('what the tools get', () => {
  it('the connection string has everything but the password, sslmode first', () => {
    const db = parseDatabaseUrl(
      `postgresql://postgres.${REF}:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require`
    )
    assert.equal(toolConnectionString(db), `postgresql://postgres.${REF}@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require`)
  })

  it('the connection string percent-encodes the user, the database, an IPv6 host and parameters, as libpq decodes them', () => {
    const db = parseDatabaseUrl('postgresql://us%40er:p@[::1]:6000/my%20db?options=-c%20search_path%3Dapp&application_name=a+b')
    assert.equal(
      toolConnectionString(db),
      'postgresql://us%40er@[::1]:6000/my%20db?sslmode=prefer&options=-c%20search_path%3Dapp&application_name=a%2Bb'
    )
  })

  it('the environment passes the password as PGPASSWORD and drops the runner own PG* variables', () => {
    const db = parseDatabaseUrl(`postgresql://u:${encodeURIComponent('p@ss word')}@h/d`)
    const env = toolEnvironment(db, { PATH: '/bin', HOME: '/home/runner', PGHOST: 'elsewhere', PGPASSWORD: 'other', PGSSLMODE: 'disable' })
    assert.deepEqual(env, {
      PATH: '/bin',
      HOME: '/home/runner',
      PGPASSWORD: 'p@ss word',
      PGCONNECT_TIMEOUT: '15',
      PGAPPNAME: 'supabase-s3-backup'
    })
  })
})

describe('databaseUrlSecrets', () => {
  it('masks the whole URL and its password, as written and percent-decoded', () => {
    const raw = 'postgresql://postgres:p%40ss%2Fw%23rd@db.example.com:5432/postgres'
    assert.deepEqual(new Set(databaseUrlSecrets(raw)), new Set([raw, 'p@ss/w#rd', 'p%40ss%2Fw%23rd']))
  })

  it('masks a password given as ?password=, and the one in the userinfo too', () => {
    const raw = 'postgresql://postgres:old@h/d?password=n%40w'
    const secrets = databaseUrlSecrets(raw)
    for (const form of [raw, 'n@w', 'n%40w', 'old']) assert.ok(secrets.includes(form), `${form} is not masked`)
  })

  it('masks the whole value when it is not a valid URL, and nothing when it is empty', () => {
    assert.deepEqual(databaseUrlSecrets(`host=h password=${PASSWORD}`), [`host=h password=${PASSWORD}`])
    assert.deepEqual(databaseUrlSecrets(''), [])
  })

  it('masks the password of a URL the parser refuses (a bad sslmode)', () => {
    const raw = `postgresql://postgres:${PASSWORD}@h/d?sslmode=on`
    assert.ok(databaseUrlSecrets(raw).includes(PASSWORD))
  })
})
