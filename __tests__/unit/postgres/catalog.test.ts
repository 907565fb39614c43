// What the dump leaves out, as the Supabase CLI does: pg_dump's name patterns as regular
// expressions (the row counts use them in SQL, pg_dump in --exclude-schema), the managed schemas,
// the schemas whose rows are still the project's, and the platform's own tables.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  anyOf,
  DATA_EXCLUDED_SCHEMAS,
  DATA_EXCLUDED_TABLES,
  MANAGED_SCHEMAS,
  patternSource,
  qualifiedName,
  quoteIdentifier
} from '../../../src/postgres/catalog.js'

describe('pg_dump name patterns', () => {
  it('* is any run of characters, ? one, and the whole name must match', () => {
    const pattern = anyOf(['pg_*', 'tiger', 'log_?'])
    for (const name of ['pg_catalog', 'pg_toast', 'pg_', 'tiger', 'log_1']) assert.ok(pattern.test(name), name)
    for (const name of ['public', 'tiger_data', 'xtiger', 'log_12', 'log_', 'my_pg_stuff']) assert.ok(!pattern.test(name), name)
  })

  it('everything else is literal, regular-expression characters included', () => {
    assert.equal(patternSource('a.b+c$(d)|[e]'), 'a\\.b\\+c\\$\\(d\\)\\|\\[e\\]')
    assert.ok(!anyOf(['a.b']).test('axb'))
    assert.ok(anyOf(['a.b']).test('a.b'))
  })
})

describe('what the dump leaves out', () => {
  const managed = anyOf(MANAGED_SCHEMAS)
  const noData = anyOf(DATA_EXCLUDED_SCHEMAS)

  it("schema.sql leaves out the platform's schemas and every pg_ and timescaledb one, never the project's own", () => {
    for (const schema of [
      'auth',
      'storage',
      'extensions',
      'realtime',
      'vault',
      'pg_catalog',
      'pg_toast',
      'information_schema',
      '_timescaledb_internal',
      'timescaledb_information'
    ]) {
      assert.ok(managed.test(schema), schema)
    }
    for (const schema of ['public', 'app', 'authx', 'my_auth', 'Auth', 'storage2']) assert.ok(!managed.test(schema), schema)
  })

  it("data.sql keeps the rows of auth, storage, supabase_functions, cron, net and pgmq: they are the project's data", () => {
    for (const schema of ['auth', 'storage', 'supabase_functions', 'cron', 'net', 'pgmq', 'public']) assert.ok(!noData.test(schema), schema)
    for (const schema of ['extensions', 'realtime', 'vault', 'pgsodium', 'graphql', 'pg_catalog', 'supabase_migrations'])
      assert.ok(noData.test(schema), schema)
    for (const schema of DATA_EXCLUDED_SCHEMAS) assert.ok((MANAGED_SCHEMAS as readonly string[]).includes(schema), schema)
  })

  it("the platform's migration tables are left out of data.sql by name, each in a schema whose rows are kept", () => {
    assert.deepEqual([...DATA_EXCLUDED_TABLES], ['auth.schema_migrations', 'storage.migrations', 'supabase_functions.migrations'])
    for (const table of DATA_EXCLUDED_TABLES) {
      const schema = table.split('.')[0] ?? ''
      assert.ok(!noData.test(schema), `${table} would be left out by its schema already`)
    }
  })
})

describe('qualified names', () => {
  it("quote as pg_dump --quote-all-identifiers writes them in COPY, so the counts' keys meet", () => {
    assert.equal(quoteIdentifier('Mixed Case'), '"Mixed Case"')
    assert.equal(qualifiedName({ schema: 'public', name: 'my "quoted" table.v2' }), '"public"."my ""quoted"" table.v2"')
  })
})
