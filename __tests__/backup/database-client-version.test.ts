// Which pg_dump dumps the database: the newest installed that is at least the server's major. Fake
// client directories (pg_dump, pg_dumpall and psql that claim a version and run the real tools for
// everything else) stand beside the runner's real PostgreSQL 15 tools: a newer one (99) is chosen
// over 15, an older one (14) never; when only older ones exist and nothing can be installed, the
// error names the version needed and how to get it. The action itself, with the fakes on PATH,
// dumps with the newest.
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { DatabaseError } from '../../src/errors.js'
import { serverVersion } from '../../src/postgres/catalog.js'
import { candidateDirectories, ensureClients, findClients, installAdvice } from '../../src/postgres/clients.js'
import { connect } from '../../src/postgres/connect.js'
import { parseDatabaseUrl } from '../../src/postgres/url.js'
import { findPgBin } from '../../scripts/test-services/postgres.js'
import { actionInputs, backupJob, insertRow, readRow, setUpTestFile } from '../harness/backup-job.js'
import { startCluster } from '../harness/clusters.js'
import { createProject } from '../harness/supabase-project.js'

const { svc, bucket, workspace } = await setUpTestFile('db-client-version', {})
const source = await startCluster('client-version')
await createProject(source, 10)
const realBin = findPgBin()
assert.ok(realBin, 'PostgreSQL is not installed')

const fakes = await mkdtemp(path.join(os.tmpdir(), 'pg-client-fakes-'))
after(() => rm(fakes, { recursive: true, force: true }))
const newer = await fakeClients('99', 'pg_dump (PostgreSQL) 99.1 (a future release)')
const older = await fakeClients('14', 'pg_dump (PostgreSQL) 14.13 (Ubuntu 14.13-1.pgdg24.04+1)')

const server = await (async () => {
  const client = await connect(parseDatabaseUrl(source.url()), 'read its version')
  try {
    return await serverVersion(client)
  } finally {
    await client.end()
  }
})()

/**
 * A directory with pg_dump, pg_dumpall and psql that answer --version with `versionText` (each its
 * own name in it) and run the real tools of the services' PostgreSQL for everything else.
 */
async function fakeClients(name: string, versionText: string): Promise<string> {
  const directory = path.join(fakes, name)
  await mkdir(directory)
  for (const tool of ['pg_dump', 'pg_dumpall', 'psql']) {
    const script = [
      '#!/bin/sh',
      `if [ "$1" = "--version" ]; then echo '${versionText.replace('pg_dump', tool)}'; exit 0; fi`,
      `exec '${path.join(realBin as string, tool)}' "$@"`,
      ''
    ].join('\n')
    await writeFile(path.join(directory, tool), script)
    await chmod(path.join(directory, tool), 0o755)
  }
  return directory
}

const noInstall = async (): Promise<undefined> => undefined

describe('the client tools for the database', () => {
  it('the server here is PostgreSQL 15, and so are the runner’s own tools', async () => {
    assert.equal(server.major, 15)
    const [own] = await findClients([realBin as string])
    assert.equal(own?.major, 15)
  })

  it('findClients reads each directory’s version from its pg_dump, newest first', async () => {
    const found = await findClients([older, realBin as string, newer, path.join(fakes, 'missing')])
    assert.deepEqual(
      found.map(clients => [clients.directory, clients.version]),
      [
        [newer, '99.1'],
        [realBin, found[1]?.version],
        [older, '14.13']
      ]
    )
    assert.match(found[1]?.version ?? '', /^15\.\d+$/)
    assert.equal(found[0]?.versionText, 'pg_dump (PostgreSQL) 99.1 (a future release)')
  })

  it('a newer client on PATH is chosen over the runner’s 15', async () => {
    const lines: string[] = []
    const chosen = await ensureClients(server.major, line => lines.push(line), {
      directories: () => candidateDirectories({ PATH: [older, newer].join(path.delimiter) }),
      installer: noInstall
    })
    assert.equal(chosen.directory, newer)
    assert.equal(chosen.major, 99)
    assert.deepEqual(lines, [])
  })

  it('an older client on PATH is never chosen: the runner’s 15 is', async () => {
    const chosen = await ensureClients(server.major, () => {}, {
      directories: () => candidateDirectories({ PATH: older }),
      installer: noInstall
    })
    assert.equal(chosen.major, 15)
    assert.notEqual(chosen.directory, older)
  })

  it('with only older clients and no way to install, the error names the version needed and how to get it', async () => {
    const lines: string[] = []
    const error = await ensureClients(server.major, line => lines.push(line), { directories: () => [older], installer: noInstall }).then(
      () => assert.fail('an older client was accepted'),
      (error: unknown) => error
    )
    assert.ok(error instanceof DatabaseError, String(error))
    assert.match(
      error.message,
      new RegExp(
        `^The database runs PostgreSQL 15, and this runner's newest pg_dump is 14\\.13 \\(${older}\\): pg_dump must be at least the server's version\\.`
      )
    )
    assert.ok(error.message.includes(`\`${installAdvice(15)}\``), error.message)
    assert.match(error.message, /or use a runner image that has PostgreSQL 15's client tools\.$/)
    assert.deepEqual(lines, [], 'nothing was to be installed')
  })

  it('with no client at all, the error says there is none', async () => {
    const error = await ensureClients(server.major, () => {}, {
      directories: () => [path.join(fakes, 'missing')],
      installer: noInstall
    }).catch((error: unknown) => error)
    assert.ok(error instanceof DatabaseError)
    assert.match(error.message, /^The database runs PostgreSQL 15, and this runner has no pg_dump: .*postgresql-client-15/)
  })

  it('the action, with a newer and an older client on PATH, dumps with the newer one', async () => {
    const row = await insertRow(svc)
    const job = await backupJob(svc, {
      workspace: workspace.dir,
      inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', 'database-url': source.url(), format: 'zip' }),
      env: { PATH: [older, newer, process.env.PATH ?? ''].join(path.delimiter) }
    })
    assert.equal(job.main.conclusion, 'success', job.main.stdout)
    assert.match(job.main.stdout, new RegExp(`dumping it with pg_dump 99\\.1 \\(${newer}\\)`))
    assert.match(job.main.summary, /\(pg_dump 99\.1\)/)
    assert.equal((await readRow(svc, row.id)).status, 'success')
  })
})
