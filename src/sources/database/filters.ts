import { KEPT_ROLE_SETTINGS, MANAGED_ROLES, MANAGED_SCHEMAS, patternSource } from '../../postgres/catalog.js'
import { SqlLexer } from './sql-lines.js'

/**
 * What the Supabase CLI's `db dump` does to pg_dump's output (supabase/cli,
 * pkg/migration/scripts/dump_role.sh, dump_schema.sh, dump_data.sh), done here on the stream:
 * each filter takes the tool's stdout in chunks and gives what goes into the archive.
 */
export interface DumpFilter {
  /** Output for one chunk of the tool's output; pieces may be views of `chunk`. */
  push(chunk: Buffer): Buffer[]
  /** Output at the end of the tool's output. */
  end(): Buffer[]
}

/** Comments out psql's \restrict and \unrestrict (pg_dump since 17.6, 16.10, 15.14), which an older psql refuses. */
const RESTRICT = /^\\(un)?restrict .*$/
/** A PostgreSQL 17 setting that an older server refuses. */
const TRANSACTION_TIMEOUT = /^SET transaction_timeout = 0;/

const RESERVED_ROLE = `(?:${MANAGED_ROLES.join('|')})`
const KEPT_SETTING = `(?:${KEPT_ROLE_SETTINGS.map(patternSource).join('|')})`
const MANAGED_SCHEMA = `(?:${MANAGED_SCHEMAS.map(patternSource).join('|')})`

/** roles.sql: the project's own roles, without passwords, without the roles Supabase creates. */
export function rolesFilter(): DumpFilter {
  let previous: string | undefined
  return new TextLineFilter(
    line => {
      let out = line
      if (RESTRICT.test(out)) out = `-- ${out}`
      out = out.replace(new RegExp(`^CREATE ROLE "${RESERVED_ROLE}"`), '-- $&')
      out = out.replace(new RegExp(`^ALTER ROLE "${RESERVED_ROLE}"`), '-- $&')
      out = out.replace(/ (NOSUPERUSER|NOREPLICATION)/g, '')
      // A managed role's settings that are the project's own (e.g. pgrst.db_schemas) are kept.
      out = out.replace(new RegExp(`^-- (.* SET "${KEPT_SETTING}" .*)`), '$1')
      out = out.replace(new RegExp(`GRANT ".*" TO "${RESERVED_ROLE}"`), '-- $&')
      // The CLI deletes comments, then runs uniq over what is left.
      if (out.startsWith('--')) return undefined
      if (out === previous) return undefined
      previous = out
      return out
    },
    '',
    'RESET ALL;\n'
  )
}

/** The schema line by line as the CLI's sed has it: the platform's objects out, re-runnable CREATEs. */
const SCHEMA_RULES: [RegExp, string][] = [
  [RESTRICT, '-- $&'],
  [/^CREATE SCHEMA "/, 'CREATE SCHEMA IF NOT EXISTS "'],
  [/^CREATE TABLE "/, 'CREATE TABLE IF NOT EXISTS "'],
  [/^CREATE SEQUENCE "/, 'CREATE SEQUENCE IF NOT EXISTS "'],
  [/^CREATE VIEW "/, 'CREATE OR REPLACE VIEW "'],
  [/^CREATE FUNCTION "/, 'CREATE OR REPLACE FUNCTION "'],
  [/^CREATE TRIGGER "/, 'CREATE OR REPLACE TRIGGER "'],
  [/^CREATE PUBLICATION "supabase_realtime/, '-- $&'],
  [/^CREATE EVENT TRIGGER /, '-- $&'],
  [/^ {9}WHEN TAG IN /, '-- $&'],
  [/^ {3}EXECUTE FUNCTION /, '-- $&'],
  [/^ALTER EVENT TRIGGER /, '-- $&'],
  [/^ALTER PUBLICATION "supabase_realtime_/, '-- $&'],
  [/^ALTER FOREIGN DATA WRAPPER (.+) OWNER TO /, '-- $&'],
  [/^ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin"/, '-- $&'],
  [/^GRANT ALL ON FOREIGN DATA WRAPPER (.+) TO "postgres" WITH GRANT OPTION/, '-- $&'],
  [new RegExp(`^GRANT (.+) ON (.+) "${MANAGED_SCHEMA}"`), '-- $&'],
  [new RegExp(`^REVOKE (.+) ON (.+) "${MANAGED_SCHEMA}"`), '-- $&'],
  [/^(CREATE EXTENSION IF NOT EXISTS "pg_tle").+/, '$1;'],
  [/^(CREATE EXTENSION IF NOT EXISTS "pgsodium").+/, '$1;'],
  [/^(CREATE EXTENSION IF NOT EXISTS "pgmq").+/, '$1;'],
  [/^COMMENT ON EXTENSION (.+)/, '-- $&'],
  [/^CREATE POLICY "cron_job_/, '-- $&'],
  [/^ALTER TABLE "cron"/, '-- $&'],
  [TRANSACTION_TIMEOUT, '-- $&']
]

/** schema.sql: the project's own schemas, as `supabase db dump` writes them. */
export function schemaFilter(): DumpFilter {
  return new TextLineFilter(line => {
    let out = line
    for (const [rule, replacement] of SCHEMA_RULES) out = out.replace(rule, replacement)
    return out.startsWith('--') ? undefined : out
  })
}

/**
 * Rewrites whole lines of SQL text, only those that start in plain SQL (SqlLexer): the others, and
 * every line the transform keeps (returns a string for), pass through. Returning undefined drops
 * the line.
 */
class TextLineFilter implements DumpFilter {
  private readonly lexer = new SqlLexer()
  private carry: Buffer = Buffer.alloc(0)

  constructor(
    private readonly transform: (line: string) => string | undefined,
    private readonly head = '',
    private readonly tail = ''
  ) {}

  push(chunk: Buffer): Buffer[] {
    const text = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk
    const lastNewline = text.lastIndexOf(10)
    // Lines are split on bytes: a character cut between two chunks waits in the carry.
    this.carry = Buffer.from(text.subarray(lastNewline + 1))
    if (lastNewline < 0) return []
    const out = this.lines(text.toString('utf8', 0, lastNewline + 1))
    return this.emit(out)
  }

  end(): Buffer[] {
    const rest = this.carry.length > 0 ? this.lines(this.carry.toString('utf8')) : ''
    this.carry = Buffer.alloc(0)
    return this.emit(rest + this.tail)
  }

  private lines(text: string): string {
    const parts = text.split('\n')
    const endsWithNewline = parts[parts.length - 1] === ''
    if (endsWithNewline) parts.pop()
    const kept: string[] = []
    for (const line of parts) {
      const plain = this.lexer.atPlainLine
      this.lexer.advance(line)
      const out = plain ? this.transform(line) : line
      if (out !== undefined) kept.push(out)
    }
    return kept.length === 0 ? '' : `${kept.join('\n')}${endsWithNewline ? '\n' : ''}`
  }

  private started = false

  private emit(text: string): Buffer[] {
    const head = this.started ? '' : this.head
    this.started = true
    const out = head + text
    return out === '' ? [] : [Buffer.from(out)]
  }
}

/** A table's COPY block: `COPY "schema"."table" ("col", ...) FROM stdin;` */
const COPY_START = /^COPY ((?:"(?:[^"]|"")*"|[^ ."]+)\.(?:"(?:[^"]|"")*"|[^ ."]+)) .*FROM stdin;$/
const COPY_END = Buffer.from('\\.\n')
const NEWLINE = 10

/**
 * data.sql: the rows as COPY, with replica mode first (triggers off, as Supabase restores) and
 * RESET ALL last. Rows pass through untouched, as views of the tool's output; only the lines
 * between the COPY blocks are looked at. Counts each table's rows as it goes: one line per row in
 * COPY's text format, where a newline in a value is written as \n.
 */
export class DataFilter implements DumpFilter {
  /** Rows per table, by the name as COPY writes it (`"schema"."table"`). */
  readonly rows = new Map<string, number>()
  private copying: string | undefined
  /** The start of a line that the chunk cut. */
  private carry: Buffer = Buffer.alloc(0)
  private started = false

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    if (!this.started) {
      this.started = true
      out.push(Buffer.from('SET session_replication_role = replica;\n\n'))
    }
    let data = chunk
    if (this.carry.length > 0) {
      // A cut line is rare (once per chunk at most): joining it with the chunk costs one copy.
      data = Buffer.concat([this.carry, chunk])
      this.carry = Buffer.alloc(0)
    }
    let at = 0
    while (at < data.length) {
      if (this.copying !== undefined) {
        const end = this.copyRows(data, at)
        if (end > at) out.push(data.subarray(at, end))
        if (end < 0) {
          this.carry = Buffer.from(data.subarray(at))
          break
        }
        at = end
        continue
      }
      const newline = data.indexOf(NEWLINE, at)
      if (newline < 0) {
        this.carry = Buffer.from(data.subarray(at))
        break
      }
      out.push(Buffer.from(`${this.statementLine(data.toString('utf8', at, newline))}\n`))
      at = newline + 1
    }
    return out
  }

  end(): Buffer[] {
    const out: Buffer[] = []
    if (this.carry.length > 0) out.push(Buffer.from(this.statementLine(this.carry.toString('utf8'))))
    this.carry = Buffer.alloc(0)
    out.push(Buffer.from(`${this.started ? '' : 'SET session_replication_role = replica;\n\n'}RESET ALL;\n`))
    return out
  }

  /**
   * Counts rows from `at` (the start of a line in a COPY block) up to the block's end marker: returns
   * where the plain SQL after it starts, the chunk's end when the block goes on, or -1 when the
   * chunk cuts a line (the caller carries it).
   */
  private copyRows(data: Buffer, at: number): number {
    const table = this.copying as string
    let rows = this.rows.get(table) ?? 0
    let line = at
    try {
      while (line < data.length) {
        if (data[line] === COPY_END[0] && line + COPY_END.length <= data.length && data.subarray(line, line + 3).equals(COPY_END)) {
          this.copying = undefined
          return line + COPY_END.length
        }
        // Too short to tell the end marker from a row that starts with a backslash: wait for more.
        if (data[line] === COPY_END[0] && line + COPY_END.length > data.length) return line === at ? -1 : line
        const newline = data.indexOf(NEWLINE, line)
        if (newline < 0) return line === at ? -1 : line
        rows += 1
        line = newline + 1
      }
      return line
    } finally {
      this.rows.set(table, rows)
    }
  }

  /** One line of SQL between the COPY blocks: notes a COPY's start, comments out what an older psql or server refuses. */
  private statementLine(line: string): string {
    const copy = COPY_START.exec(line)
    if (copy) {
      this.copying = copy[1] as string
      if (!this.rows.has(this.copying)) this.rows.set(this.copying, 0)
      return line
    }
    return RESTRICT.test(line) || TRANSACTION_TIMEOUT.test(line) ? `-- ${line}` : line
  }
}
