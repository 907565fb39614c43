// The SQL lexer under the line filters: which lines of pg_dump's output start in plain SQL, and
// which start inside a string, a quoted identifier, a dollar-quoted body or a block comment (those
// the filters must leave as they are).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SqlLexer } from '../../../../src/sources/database/sql-lines.js'

/** For each line of `text`, whether it starts in plain SQL. */
function plainStarts(text: string): boolean[] {
  const lexer = new SqlLexer()
  return text.split('\n').map(line => {
    const plain = lexer.atPlainLine
    lexer.advance(line)
    return plain
  })
}

/** `[plain?, line]` pairs, written as the dump reads, checked line by line. */
function expectLines(lines: [boolean, string][]): void {
  const text = lines.map(([, line]) => line).join('\n')
  const starts = plainStarts(text)
  lines.forEach(([plain, line], index) =>
    assert.equal(starts[index], plain, `line ${index + 1} '${line}' should start ${plain ? 'in plain SQL' : 'inside something'}`)
  )
}

describe('SqlLexer', () => {
  it('plain statements and -- comments leave every line plain', () => {
    expectLines([
      [true, 'SET statement_timeout = 0;'],
      [true, '-- a comment with a \' quote, a " quote, $$ and /*'],
      [true, 'CREATE TABLE "public"."t" ('],
      [true, '    "id" bigint NOT NULL -- trailing comment \''],
      [true, ');']
    ])
  })

  it('a dollar-quoted function body is inside until its own tag closes it; another tag inside does not', () => {
    expectLines([
      [true, 'CREATE FUNCTION "public"."f"() RETURNS "trigger"'],
      [true, '    LANGUAGE "plpgsql"'],
      [true, '    AS $_$'],
      [false, 'CREATE TABLE "looks_like_ddl" ("id" int);'],
      [false, '-- looks like a comment'],
      [false, "  raise notice $$ it's $$;"],
      [false, "  perform 'unterminated quote in a body"],
      [false, 'end $_$;'],
      [true, 'CREATE TABLE "public"."after" ();']
    ])
  })

  it('$1 and a $ inside an identifier open nothing', () => {
    expectLines([
      [true, 'PREPARE p AS SELECT $1, a$b$ FROM "t";'],
      [true, 'SELECT 1;']
    ])
  })

  it('a string that spans lines: inside until the quote closes it, and a doubled quote does not', () => {
    expectLines([
      [true, 'COMMENT ON TABLE "public"."t" IS \'first line'],
      [false, "it''s still the string"],
      [false, "CREATE TABLE \"x\" ();'; SELECT 'closed on the same line';"],
      [true, 'SELECT 1;']
    ])
  })

  it("an E'' string honours backslash escapes; a plain '' string does not (standard_conforming_strings)", () => {
    expectLines([
      [true, "SELECT E'a \\' still inside"],
      [false, "end' ;"],
      [true, "SELECT 'backslash \\' ;"],
      [true, "SELECT E'trailing backslash escapes the newline \\"],
      [false, "'' still inside';"],
      [true, 'SELECT 1;']
    ])
  })

  it("an identifier ending in E before a quote is not an E'' string", () => {
    expectLines([
      [true, "SELECT 1 AS theE'not escaped \\';"],
      [true, 'SELECT 2;']
    ])
  })

  it('a quoted identifier that spans lines, with a doubled quote inside', () => {
    expectLines([
      [true, 'CREATE TABLE "public"."odd'],
      [false, 'name with ""quotes"" -- and dashes'],
      [false, 'end" ("id" int);'],
      [true, 'SELECT 1;']
    ])
  })

  it('block comments nest, and close only at the matching */', () => {
    expectLines([
      [true, 'SELECT 1; /* outer'],
      [false, '/* inner */ still in outer'],
      [false, "-- not a comment here, nor 'a string"],
      [false, '*/ SELECT 2; /* another */'],
      [true, 'SELECT 3;']
    ])
  })

  it('what opens on a -- comment line does not count', () => {
    expectLines([
      [true, '-- it\'s $$ /* " nothing'],
      [true, 'SELECT 1;']
    ])
  })
})
