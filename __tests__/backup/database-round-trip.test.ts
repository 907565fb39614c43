// The database in the backup and back: a source shaped like a Supabase project (auth and storage,
// RLS, a trigger, a view, an enum, a sequence, a custom role, awkward values, a table of a million
// rows) is backed up with database-url in every compressed format and restored by the restore
// sub-action into a new project on another cluster. The restored database has the same schema
// and, table by table, the same rows; the archive is what Supabase's own backups hold.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import type { DatabaseManifest } from '../../src/postgres/manifest.js'
import { actionInputs, backupJob, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'
import { startCluster, type Cluster } from '../harness/clusters.js'
import { AWKWARD_TEXT, createEmptyProject, createProject, tableHashes } from '../harness/supabase-project.js'
import { listTree } from '../harness/workspace.js'

const run = promisify(execFile)
const LARGE_ROWS = 1_000_000
const { svc, bucket, workspace } = await setUpTestFile('db-round-trip', {
  'data/notes.txt': 'hello\n',
  'data/sub/more.bin': { size: 4096 }
})
const source = await startCluster('source')
await createProject(source, LARGE_ROWS)
const scratch = await mkdtemp(path.join(os.tmpdir(), 'db-round-trip-'))
after(() => rm(scratch, { recursive: true, force: true }))
const sourceSchema = await schemaOf(source)
const sourceRows = await tableHashes(source)

/** The whole schema as pg_dump has it, but for the per-run key of \restrict. */
async function schemaOf(cluster: Cluster): Promise<string> {
  const { stdout } = await run('pg_dump', ['--schema-only', cluster.url()], { maxBuffer: 64 * 1024 * 1024 })
  return stdout.replace(/^\\(un)?restrict .*$/gm, '')
}

async function backUp(format: string, extra: Record<string, string> = {}): Promise<{ rowId: string; key: string }> {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, path: '', 'database-url': source.url(), format, ...extra })
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  assert.match(job.main.summary, new RegExp(`postgres on PostgreSQL 15\\.\\d+: 7 tables, ${LARGE_ROWS + 28} rows`))
  const done = await readRow(svc, row.id)
  assert.equal(done.status, 'success')
  return { rowId: row.id, key: done.s3_key ?? '' }
}

describe('database round trip', () => {
  for (const format of ['zip', 'tar.gz', 'tar.zst'] as const) {
    it(`${format}: a new project restored from the backup has the same schema and the same rows in every table`, async () => {
      const backup = await backUp(format)
      const target = await startCluster(`target-${format}`)
      await createEmptyProject(target)
      const restore = await restoreHook(svc, restoreInputs(svc, bucket, { 'backup-id': backup.rowId, 'database-url': target.url() }))
      assert.equal(restore.conclusion, 'success', restore.stdout)
      assert.equal(restore.outputs.tables, '7')
      assert.equal(restore.outputs.rows, String(LARGE_ROWS + 28))
      assert.match(restore.summary, /public\.events<\/td><td>1000000<\/td><td>1000000<\/td><td>✅/)
      assert.equal(await schemaOf(target), sourceSchema)
      assert.deepEqual(await tableHashes(target), sourceRows)
    })
  }

  it('the archive holds what Supabase documents, restorable by hand with psql; files and database in one archive', async () => {
    const backup = await backUp('tar.gz', { path: 'data' })
    const archive = path.join(scratch, 'backup.tar.gz')
    await writeFile(archive, await svc.s3.getObject(bucket, backup.key))
    const into = path.join(scratch, 'by-hand')
    await mkdir(into)
    await run('tar', ['-xzf', archive, '-C', into])
    const tree = await listTree(into)
    assert.deepEqual([...tree.keys()].filter(name => tree.get(name)?.type === 'file').sort(), [
      'data/notes.txt',
      'data/sub/more.bin',
      'database/data.sql',
      'database/manifest.json',
      'database/roles.sql',
      'database/schema.sql'
    ])

    const manifest = JSON.parse(await readFile(path.join(into, 'database/manifest.json'), 'utf8')) as DatabaseManifest
    assert.equal(manifest.server.version.split('.')[0], '15')
    assert.match(manifest.client.pgDump, /^pg_dump \(PostgreSQL\) 15\./)
    assert.deepEqual(
      manifest.tables.map(table => `${table.schema}.${table.name}=${table.rows}`),
      [
        'auth.users=2',
        `public.events=${LARGE_ROWS}`,
        `public.labels=${AWKWARD_TEXT.length}`,
        `public.notes=${AWKWARD_TEXT.length}`,
        'public.profiles=2',
        'storage.buckets=1',
        'storage.objects=1'
      ]
    )
    for (const part of manifest.parts) {
      const { stdout } = await run('sha256sum', [path.join(into, part.path)])
      assert.equal(stdout.split(' ')[0], part.sha256, part.path)
    }
    // What Supabase manages stays out: its roles, its schemas, its migration history.
    const roles = await readFile(path.join(into, 'database/roles.sql'), 'utf8')
    assert.match(roles, /^CREATE ROLE "analyst";$/m)
    assert.match(roles, /^ALTER ROLE "authenticator" SET "pgrst\.db_schemas" TO 'public, graphql_public';$/m)
    assert.doesNotMatch(roles, /CREATE ROLE "(anon|authenticated|service_role|authenticator|postgres|supabase_admin)"/)
    assert.doesNotMatch(roles, /PASSWORD/)
    const schema = await readFile(path.join(into, 'database/schema.sql'), 'utf8')
    assert.doesNotMatch(schema, /CREATE TABLE( IF NOT EXISTS)? "(auth|storage)"\./)
    assert.match(schema, /^CREATE TABLE IF NOT EXISTS "public"\."events" \($/m)
    const data = await readFile(path.join(into, 'database/data.sql'), 'utf8')
    assert.match(data, /^SET session_replication_role = replica;\n/)
    assert.match(data, /RESET ALL;\n$/)
    assert.doesNotMatch(data, /COPY "(auth"\."schema_migrations|storage"\."migrations)"/)

    // Supabase's restore, as its guide gives it, into another new project.
    const target = await startCluster('by-hand')
    await createEmptyProject(target)
    const file = (name: string): string => path.join(into, 'database', name)
    await run(
      'psql',
      [
        '--single-transaction',
        '--variable',
        'ON_ERROR_STOP=1',
        '--quiet',
        '--file',
        file('roles.sql'),
        '--file',
        file('schema.sql'),
        '--command',
        'SET session_replication_role = replica',
        '--file',
        file('data.sql'),
        '--dbname',
        target.url()
      ],
      { maxBuffer: 64 * 1024 * 1024 }
    )
    assert.deepEqual(await tableHashes(target), sourceRows)
  })
})
