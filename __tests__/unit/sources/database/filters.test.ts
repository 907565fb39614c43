// The filters between pg_dump and the archive, which do what `supabase db dump` does to its output:
// roles.sql without the roles Supabase creates, schema.sql without the platform's objects and with
// re-runnable CREATEs, data.sql in replica mode with each table's rows counted. A pipe may cut the
// output anywhere, so each filter is fed its input cut at every byte and at seeded random offsets,
// and must give what it gives for the whole.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MANAGED_ROLES } from '../../../../src/postgres/catalog.js'
import { DataFilter, rolesFilter, schemaFilter, type DumpFilter } from '../../../../src/sources/database/filters.js'
import { bytewise, cutsInTwo, filtered, randomCuts } from './chunks.js'

const lines = (...text: string[]): string => `${text.join('\n')}\n`

/** The filter's output for the whole input, after checking that every way of cutting it gives the same. */
function sameForEveryCut(make: () => DumpFilter, text: string, seeds = 200): string {
  const input = Buffer.from(text)
  const whole = filtered(make(), [input])
  for (const pieces of cutsInTwo(input)) {
    const cut = pieces[0]?.length ?? 0
    assert.ok(
      filtered(make(), pieces).equals(whole),
      `cut at byte ${cut} ('${input.subarray(Math.max(0, cut - 12), cut).toString()}|...') changed the output`
    )
  }
  for (let seed = 1; seed <= seeds; seed++) {
    const pieces = randomCuts(input, seed, 1 + (seed % 40))
    assert.ok(filtered(make(), pieces).equals(whole), `random cuts of seed ${seed} changed the output`)
  }
  assert.ok(filtered(make(), bytewise(input)).equals(whole), 'one byte at a time changed the output')
  return whole.toString()
}

/** What pg_dumpall --roles-only --no-role-passwords --no-comments --quote-all-identifiers writes for a Supabase project. */
const ROLES_DUMP = lines(
  '--',
  '-- PostgreSQL database cluster dump',
  '--',
  '',
  '\\restrict 3Mf7fQuehAnrr3ZOxto1QAcbnnE4OvBSHbuhSWLLbnICos069dYTrSHvAcQvI95',
  '',
  'SET default_transaction_read_only = off;',
  '',
  "SET client_encoding = 'UTF8';",
  'SET standard_conforming_strings = on;',
  '',
  '--',
  '-- Roles',
  '--',
  '',
  'CREATE ROLE "anon";',
  'ALTER ROLE "anon" WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
  'CREATE ROLE "authenticator";',
  'ALTER ROLE "authenticator" WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;',
  'CREATE ROLE "cli_login_postgres";',
  'CREATE ROLE "postgres";',
  'ALTER ROLE "postgres" WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;',
  'CREATE ROLE "supabase_admin";',
  'ALTER ROLE "supabase_admin" WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;',
  'CREATE ROLE "pgsodium_keyholder";',
  'CREATE ROLE "app_reader";',
  'ALTER ROLE "app_reader" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;',
  'CREATE ROLE "postgres_fdw_user";',
  'ALTER ROLE "postgres_fdw_user" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
  '',
  '--',
  '-- User Configurations',
  '--',
  '',
  'ALTER ROLE "authenticator" SET "pgrst.db_schemas" TO \'public, graphql_public\';',
  'ALTER ROLE "authenticator" SET "statement_timeout" TO \'8s\';',
  'ALTER ROLE "authenticator" SET "search_path" TO \'public\';',
  'ALTER ROLE "anon" SET "statement_timeout" TO \'3s\';',
  'ALTER ROLE "app_reader" SET "search_path" TO \'app\';',
  '',
  '--',
  '-- Role memberships',
  '--',
  '',
  'GRANT "anon" TO "authenticator" GRANTED BY "postgres";',
  'GRANT "app_reader" TO "postgres" GRANTED BY "supabase_admin";',
  'GRANT "pg_read_all_data" TO "supabase_read_only_user" GRANTED BY "supabase_admin";',
  'GRANT "authenticated" TO "app_reader" GRANTED BY "postgres";',
  '',
  '',
  '',
  '',
  '\\unrestrict 3Mf7fQuehAnrr3ZOxto1QAcbnnE4OvBSHbuhSWLLbnICos069dYTrSHvAcQvI95',
  '',
  '--',
  '-- PostgreSQL database cluster dump complete',
  '--',
  ''
)

describe('rolesFilter', () => {
  const out = sameForEveryCut(rolesFilter, ROLES_DUMP)

  it('gives what `supabase db dump --role-only` gives, then RESET ALL', () => {
    assert.equal(
      out,
      lines(
        '',
        'SET default_transaction_read_only = off;',
        '',
        "SET client_encoding = 'UTF8';",
        'SET standard_conforming_strings = on;',
        '',
        'CREATE ROLE "app_reader";',
        'ALTER ROLE "app_reader" WITH INHERIT NOCREATEROLE NOCREATEDB LOGIN NOBYPASSRLS;',
        'CREATE ROLE "postgres_fdw_user";',
        'ALTER ROLE "postgres_fdw_user" WITH INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOBYPASSRLS;',
        '',
        'ALTER ROLE "authenticator" SET "pgrst.db_schemas" TO \'public, graphql_public\';',
        'ALTER ROLE "authenticator" SET "statement_timeout" TO \'8s\';',
        'ALTER ROLE "anon" SET "statement_timeout" TO \'3s\';',
        'ALTER ROLE "app_reader" SET "search_path" TO \'app\';',
        '',
        'GRANT "authenticated" TO "app_reader" GRANTED BY "postgres";',
        '',
        'RESET ALL;'
      )
    )
  })

  it('creates, alters and grants to none of the roles Supabase creates (MANAGED_ROLES, patterns instantiated)', () => {
    const names = MANAGED_ROLES.map(pattern => pattern.replace('.*', 'example'))
    const dump = lines(
      ...names.flatMap(name => [
        `CREATE ROLE "${name}";`,
        `ALTER ROLE "${name}" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;`,
        `ALTER ROLE "${name}" SET "search_path" TO 'public';`,
        `GRANT "app_reader" TO "${name}" GRANTED BY "postgres";`
      ])
    )
    assert.equal(filtered(rolesFilter(), [Buffer.from(dump)]).toString(), 'RESET ALL;\n')
    for (const name of names) assert.doesNotMatch(out, new RegExp(`^(CREATE|ALTER) ROLE "${name}" WITH`, 'm'))
  })

  it('keeps a role whose name only starts like a managed one', () => {
    assert.match(out, /^CREATE ROLE "postgres_fdw_user";$/m)
  })

  it("keeps a managed role's settings that are the project's own (pgrst.*, statement_timeout), not the others", () => {
    assert.match(out, /^ALTER ROLE "authenticator" SET "pgrst\.db_schemas"/m)
    assert.doesNotMatch(out, /SET "search_path" TO 'public'/)
  })

  it('drops grants to a managed role, keeps grants of one to a role of the project', () => {
    assert.doesNotMatch(out, /TO "(postgres|authenticator|supabase_read_only_user)" GRANTED/)
    assert.match(out, /^GRANT "authenticated" TO "app_reader"/m)
  })

  it('carries no password: none in a managed role, none a superuser attribute could bring', () => {
    const withPasswords = ROLES_DUMP.replace(
      'ALTER ROLE "postgres" WITH SUPERUSER',
      'ALTER ROLE "postgres" WITH PASSWORD \'SCRAM-SHA-256$4096:secret\' SUPERUSER'
    ).replace('ALTER ROLE "supabase_admin" WITH', 'ALTER ROLE "supabase_admin" WITH PASSWORD \'md5secret\'')
    assert.doesNotMatch(filtered(rolesFilter(), [Buffer.from(withPasswords)]).toString(), /PASSWORD|secret/)
    assert.doesNotMatch(out, /PASSWORD/)
  })

  it('collapses repeated lines, as uniq does after the comments are gone', () => {
    assert.doesNotMatch(out, /\n\n\n/)
    assert.equal(
      filtered(rolesFilter(), [Buffer.from(lines('CREATE ROLE "a";', '-- x', 'CREATE ROLE "a";', 'CREATE ROLE "b";'))]).toString(),
      lines('CREATE ROLE "a";', 'CREATE ROLE "b";', 'RESET ALL;')
    )
  })

  it('an empty dump is RESET ALL alone', () => {
    assert.equal(filtered(rolesFilter(), []).toString(), 'RESET ALL;\n')
  })
})

/** pg_dump --schema-only --quote-all-identifiers, with what the platform puts in a project and what a user may write. */
const SCHEMA_DUMP = lines(
  '--',
  '-- PostgreSQL database dump',
  '--',
  '',
  '\\restrict Zq0m2Qf8',
  '',
  'SET statement_timeout = 0;',
  'SET transaction_timeout = 0;',
  "SET client_encoding = 'UTF8';",
  '',
  'CREATE SCHEMA "app";',
  'ALTER SCHEMA "app" OWNER TO "postgres";',
  'COMMENT ON EXTENSION "pg_graphql" IS \'pg_graphql: GraphQL support\';',
  'CREATE EXTENSION IF NOT EXISTS "pgsodium" WITH SCHEMA "pgsodium";',
  'CREATE EXTENSION IF NOT EXISTS "pg_tle" WITH SCHEMA "pgtle";',
  'CREATE EXTENSION IF NOT EXISTS "pgcrypto" WITH SCHEMA "extensions";',
  'CREATE TYPE "app"."mood" AS ENUM (',
  "    'sad',",
  "    'happy'",
  ');',
  'CREATE FUNCTION "app"."touch"() RETURNS "trigger"',
  '    LANGUAGE "plpgsql"',
  '    AS $$',
  'begin',
  '-- a comment in the body stays',
  'CREATE TABLE "inside_the_body" ("id" int);',
  '  new.updated_at = now(); -- émoji 🎉 in a body',
  '  return new;',
  'end $$;',
  'CREATE TABLE "app"."notes" (',
  '    "id" bigint NOT NULL,',
  '    "body" "text" DEFAULT \'multi',
  'CREATE VIEW "not_a_view" -- inside a string',
  'line\'::"text"',
  ');',
  'COMMENT ON COLUMN "app"."notes"."body" IS \'the \'\'note\'\' itself\';',
  'CREATE SEQUENCE "app"."notes_id_seq"',
  '    START WITH 1',
  '    INCREMENT BY 1;',
  'CREATE VIEW "app"."recent" AS',
  ' SELECT "notes"."id" FROM "app"."notes";',
  'CREATE TRIGGER "touch" BEFORE UPDATE ON "app"."notes" FOR EACH ROW EXECUTE FUNCTION "app"."touch"();',
  'CREATE POLICY "cron_job_policy" ON "cron"."job" USING (("username" = CURRENT_USER));',
  'ALTER TABLE "cron"."job" ENABLE ROW LEVEL SECURITY;',
  'CREATE POLICY "own notes" ON "app"."notes" USING (true);',
  'CREATE PUBLICATION "supabase_realtime" WITH (publish = \'insert, update, delete, truncate\');',
  'ALTER PUBLICATION "supabase_realtime_messages_publication" OWNER TO "supabase_admin";',
  'CREATE EVENT TRIGGER "issue_pg_cron_access" ON "ddl_command_end"',
  "         WHEN TAG IN ('CREATE EXTENSION')",
  '   EXECUTE FUNCTION "extensions"."grant_pg_cron_access"();',
  'ALTER EVENT TRIGGER "issue_pg_cron_access" OWNER TO "supabase_admin";',
  'ALTER FOREIGN DATA WRAPPER "postgres_fdw" OWNER TO "postgres";',
  'GRANT ALL ON FOREIGN DATA WRAPPER "postgres_fdw" TO "postgres" WITH GRANT OPTION;',
  'GRANT USAGE ON SCHEMA "auth" TO "anon";',
  'REVOKE ALL ON FUNCTION "pgsodium"."crypto_aead_det_decrypt"("bytea") FROM "pgsodium_keyiduser";',
  'GRANT ALL ON TABLE "app"."notes" TO "authenticated";',
  'ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES TO "postgres";',
  'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "app" GRANT ALL ON TABLES TO "anon";',
  '',
  '\\unrestrict Zq0m2Qf8',
  ''
)

describe('schemaFilter', () => {
  const out = sameForEveryCut(schemaFilter, SCHEMA_DUMP)

  it('gives what `supabase db dump` gives: comments and the platform out, CREATEs re-runnable', () => {
    assert.equal(
      out,
      lines(
        '',
        '',
        'SET statement_timeout = 0;',
        "SET client_encoding = 'UTF8';",
        '',
        'CREATE SCHEMA IF NOT EXISTS "app";',
        'ALTER SCHEMA "app" OWNER TO "postgres";',
        'CREATE EXTENSION IF NOT EXISTS "pgsodium";',
        'CREATE EXTENSION IF NOT EXISTS "pg_tle";',
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto" WITH SCHEMA "extensions";',
        'CREATE TYPE "app"."mood" AS ENUM (',
        "    'sad',",
        "    'happy'",
        ');',
        'CREATE OR REPLACE FUNCTION "app"."touch"() RETURNS "trigger"',
        '    LANGUAGE "plpgsql"',
        '    AS $$',
        'begin',
        '-- a comment in the body stays',
        'CREATE TABLE "inside_the_body" ("id" int);',
        '  new.updated_at = now(); -- émoji 🎉 in a body',
        '  return new;',
        'end $$;',
        'CREATE TABLE IF NOT EXISTS "app"."notes" (',
        '    "id" bigint NOT NULL,',
        '    "body" "text" DEFAULT \'multi',
        'CREATE VIEW "not_a_view" -- inside a string',
        'line\'::"text"',
        ');',
        'COMMENT ON COLUMN "app"."notes"."body" IS \'the \'\'note\'\' itself\';',
        'CREATE SEQUENCE IF NOT EXISTS "app"."notes_id_seq"',
        '    START WITH 1',
        '    INCREMENT BY 1;',
        'CREATE OR REPLACE VIEW "app"."recent" AS',
        ' SELECT "notes"."id" FROM "app"."notes";',
        'CREATE OR REPLACE TRIGGER "touch" BEFORE UPDATE ON "app"."notes" FOR EACH ROW EXECUTE FUNCTION "app"."touch"();',
        'CREATE POLICY "own notes" ON "app"."notes" USING (true);',
        'GRANT ALL ON TABLE "app"."notes" TO "authenticated";',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "app" GRANT ALL ON TABLES TO "anon";',
        '',
        ''
      )
    )
  })

  it('leaves lines that start inside a function body or a string as they are, however they read', () => {
    assert.match(out, /^-- a comment in the body stays$/m)
    assert.match(out, /^CREATE TABLE "inside_the_body"/m)
    assert.match(out, /^CREATE VIEW "not_a_view" -- inside a string$/m)
  })

  it("comments out psql's \\restrict and PostgreSQL 17's transaction_timeout, which older tools refuse", () => {
    assert.doesNotMatch(out, /restrict|transaction_timeout/)
  })
})

/** COPY's text format for one row: tab between columns, \N for null, and backslash escapes. */
function copyRow(values: (string | null)[]): string {
  return values
    .map(value => (value === null ? '\\N' : value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')))
    .join('\t')
}

/** Values that look like what the filter watches for once COPY has escaped them. */
const AWKWARD: (string | null)[] = [
  'tab\there',
  'new\nline',
  '\restrict looks like a psql meta-command once COPY escapes the CR',
  '\\.',
  '.',
  '\\',
  '\\N',
  null,
  '',
  'SET transaction_timeout = 0;',
  'COPY "public"."other" ("id") FROM stdin;',
  'émoji 🎉 ✨ ünïcødé',
  '-- a comment'
]

/** A data-only dump: tables with their rows in COPY blocks, the SQL around them. */
function dataDump(tables: { name: string; rows: string[] }[]): string {
  const parts = [
    '--',
    '-- PostgreSQL database dump',
    '--',
    '',
    '\\restrict Zq0m2Qf8',
    '',
    'SET transaction_timeout = 0;',
    'SET statement_timeout = 0;',
    ''
  ]
  for (const table of tables) {
    parts.push(`COPY ${table.name} ("id", "value") FROM stdin;`, ...table.rows, '\\.', '', '')
  }
  parts.push('SELECT pg_catalog.setval(\'"public"."notes_id_seq"\', 42, true);', '', '\\unrestrict Zq0m2Qf8', '')
  return lines(...parts)
}

describe('DataFilter', () => {
  const tables = [
    { name: '"public"."notes"', rows: AWKWARD.map((value, id) => copyRow([String(id), value])) },
    { name: '"public"."single"', rows: [''] },
    { name: '"public"."empty"', rows: [] },
    { name: '"auth"."users"', rows: Array.from({ length: 50 }, (_, id) => copyRow([String(id), `user${id}@example.com`])) },
    { name: '"app"."my ""quoted"" table.v2"', rows: [copyRow(['1', 'back\\slash\tand tab']), copyRow(['2', '\\.\n'])] },
    { name: '"public"."notes"', rows: [copyRow(['99', 'a second block of the same table adds to its count'])] }
  ]
  const input = dataDump(tables)
  let filter = new DataFilter()
  const out = sameForEveryCut(() => (filter = new DataFilter()), input, 300)

  it('counts one row per line of each COPY block, whatever the rows hold, cut anywhere', () => {
    // A cut at every byte of the input, and random ones, counted alike: the last filter made ran on the bytes one at a time.
    assert.deepEqual(Object.fromEntries(filter.rows), {
      '"public"."notes"': AWKWARD.length + 1,
      '"public"."single"': 1,
      '"public"."empty"': 0,
      '"auth"."users"': 50,
      '"app"."my ""quoted"" table.v2"': 2
    })
  })

  it('passes every row through untouched, wraps the dump in replica mode and RESET ALL', () => {
    const expected = `SET session_replication_role = replica;\n\n${input
      .replace('\\restrict Zq0m2Qf8', '-- \\restrict Zq0m2Qf8')
      .replace('\\unrestrict Zq0m2Qf8', '-- \\unrestrict Zq0m2Qf8')
      .replace('SET transaction_timeout = 0;', '-- SET transaction_timeout = 0;')}RESET ALL;\n`
    assert.equal(out, expected)
    // Rows that read like the statements it rewrites are rows, left alone.
    assert.match(out, /^2\t\\restrict looks like/m)
    assert.match(out, /^9\tSET transaction_timeout = 0;$/m)
  })

  it("a row that starts with a backslash is a row; only '\\.' alone on its line ends the block", () => {
    const rows = ['\\N\tnull id', '\\\\.', '\\.x', '\\']
    const text = lines('COPY "public"."t" ("a", "b") FROM stdin;', ...rows, '\\.', 'SELECT 1;')
    const counting = new DataFilter()
    filtered(counting, bytewise(Buffer.from(text)))
    assert.equal(counting.rows.get('"public"."t"'), rows.length)
  })

  it('keys the counts by the name as COPY writes it, the way the manifest quotes it', () => {
    const counting = new DataFilter()
    filtered(counting, [Buffer.from(lines('COPY "public"."a""b" ("id") FROM stdin;', '1', '\\.'))])
    assert.deepEqual([...counting.rows.keys()], ['"public"."a""b"'])
  })

  it('an empty dump is replica mode and RESET ALL alone', () => {
    assert.equal(filtered(new DataFilter(), []).toString(), 'SET session_replication_role = replica;\n\nRESET ALL;\n')
  })
})
