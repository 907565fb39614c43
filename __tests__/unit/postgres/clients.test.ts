// The client tools a dump runs with: the version read from what pg_dump --version really prints,
// the newest installation that is at least the server's major, and how to get one when there is none.
import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, it } from 'node:test'
import {
  candidateDirectories,
  chooseClients,
  installAdvice,
  installCommands,
  parseVersion,
  toolPath,
  type ClientTools
} from '../../../src/postgres/clients.js'

describe('parseVersion', () => {
  const versions: [string, { major: number; version: string }][] = [
    ['pg_dump (PostgreSQL) 17.2 (Ubuntu 17.2-1.pgdg24.04+1)', { major: 17, version: '17.2' }],
    ['pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)', { major: 15, version: '15.18' }],
    ['pg_dump (PostgreSQL) 16.9 (Ubuntu 16.9-0ubuntu0.24.04.1)\n', { major: 16, version: '16.9' }],
    ['pg_dump (PostgreSQL) 14.13 (Homebrew)', { major: 14, version: '14.13' }],
    ['psql (PostgreSQL) 17.2', { major: 17, version: '17.2' }],
    ['pg_dumpall (PostgreSQL) 13.21', { major: 13, version: '13.21' }],
    ['pg_dump (PostgreSQL) 16beta1', { major: 16, version: '16' }],
    ['pg_dump (PostgreSQL) 18rc1', { major: 18, version: '18' }],
    ['pg_dump (PostgreSQL) 19devel', { major: 19, version: '19' }]
  ]
  for (const [text, expected] of versions) {
    it(`reads '${text.trim()}' as ${expected.version} (major ${expected.major})`, () => {
      assert.deepEqual(parseVersion(text), expected)
    })
  }

  for (const text of ['', 'pg_dump: command not found', 'pg_dump (EnterpriseDB) 15.4', 'PostgreSQL 15.4']) {
    it(`reads no version from '${text}'`, () => {
      assert.equal(parseVersion(text), undefined)
    })
  }
})

function clients(version: string, directory = `/usr/lib/postgresql/${version.split('.')[0]}/bin`): ClientTools {
  const parsed = parseVersion(`pg_dump (PostgreSQL) ${version}`)
  assert.ok(parsed)
  return { directory, ...parsed, versionText: `pg_dump (PostgreSQL) ${version}` }
}

describe('chooseClients', () => {
  /** Newest first, as findClients gives them. */
  const installed = [clients('17.2'), clients('16.9'), clients('15.18'), clients('14.13')]

  it('takes the newest installation for a server of its major or older', () => {
    for (const server of [17, 16, 15, 14, 13]) assert.equal(chooseClients(installed, server)?.version, '17.2')
  })

  it('takes none for a server newer than every installation: an older pg_dump refuses it', () => {
    assert.equal(chooseClients(installed, 18), undefined)
    assert.equal(chooseClients([clients('15.18'), clients('14.13')], 16), undefined)
  })

  it('takes none when nothing is installed', () => {
    assert.equal(chooseClients([], 15), undefined)
  })

  it('runs each tool from the chosen directory', () => {
    const chosen = clients('17.2', '/opt/pg17/bin')
    assert.equal(toolPath(chosen, 'pg_dump'), '/opt/pg17/bin/pg_dump')
    assert.equal(toolPath(chosen, 'pg_dumpall'), '/opt/pg17/bin/pg_dumpall')
    assert.equal(toolPath(chosen, 'psql'), '/opt/pg17/bin/psql')
  })
})

describe('getting the client', () => {
  it('as root: apt-get install from the PostgreSQL apt repository, without sudo, non-interactive', () => {
    assert.deepEqual(installCommands(17, false), [
      ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', 'postgresql-common'],
      ['/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh', '-y'],
      ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', 'postgresql-client-17']
    ])
  })

  it('with password-less sudo: the same commands, each behind sudo -n (which fails rather than asks)', () => {
    const commands = installCommands(16, true)
    assert.equal(commands.length, 3)
    for (const [index, command] of commands.entries()) {
      assert.deepEqual(command.slice(0, 2), ['sudo', '-n'])
      assert.deepEqual(command.slice(2), installCommands(16, false)[index])
    }
    assert.equal(commands[2]?.at(-1), 'postgresql-client-16')
  })

  it('the advice for the user installs the version needed, in one line they can paste', () => {
    const advice = installAdvice(17)
    assert.match(advice, /postgresql-client-17$/)
    assert.match(
      advice,
      /^sudo apt-get install -y postgresql-common && sudo \/usr\/share\/postgresql-common\/pgdg\/apt\.postgresql\.org\.sh -y && /
    )
    assert.doesNotMatch(advice, /\n/)
  })
})

describe('candidateDirectories', () => {
  it("searches PATH's directories in order, after the versioned ones, each once", () => {
    const onPath = ['/opt/fake/bin', '/usr/local/bin', '/opt/fake/bin', '', '/usr/bin']
    const directories = candidateDirectories({ PATH: onPath.join(path.delimiter) })
    assert.deepEqual(directories.slice(-3), ['/opt/fake/bin', '/usr/local/bin', '/usr/bin'])
    const versioned = directories.slice(0, -3)
    for (const directory of versioned) assert.match(directory, /^\/usr\/lib\/postgresql\/\d+\/bin$/)
  })

  it('without PATH, only the versioned directories', () => {
    for (const directory of candidateDirectories({})) assert.match(directory, /^\/usr\/lib\/postgresql\/\d+\/bin$/)
  })
})
