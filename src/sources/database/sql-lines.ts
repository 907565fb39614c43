/**
 * Where each line of pg_dump's output starts: in plain SQL, or inside a string, a quoted
 * identifier, a dollar-quoted function body or a block comment. The filters below rewrite only
 * lines that start in plain SQL, so that a function body or a multi-line string whose line
 * happens to read `CREATE TABLE "...` or `-- ...` comes through as it was (the Supabase CLI's sed
 * rewrites those too).
 */
export class SqlLexer {
  private state: State = { kind: 'plain' }

  /** Whether the next line starts in plain SQL. */
  get atPlainLine(): boolean {
    return this.state.kind === 'plain'
  }

  /** Moves past one line (without its newline). */
  advance(line: string): void {
    let at = 0
    while (at < line.length) {
      const state = this.state
      switch (state.kind) {
        case 'plain':
          at = this.plain(line, at)
          if (at < 0) return // a -- comment: the rest of the line
          break
        case 'single': {
          const end = closingQuote(line, at, "'", state.escapes)
          if (end < 0) return
          this.state = { kind: 'plain' }
          at = end + 1
          break
        }
        case 'double': {
          const end = closingQuote(line, at, '"', false)
          if (end < 0) return
          this.state = { kind: 'plain' }
          at = end + 1
          break
        }
        case 'dollar': {
          const end = line.indexOf(state.tag, at)
          if (end < 0) return
          this.state = { kind: 'plain' }
          at = end + state.tag.length
          break
        }
        case 'block': {
          const open = line.indexOf('/*', at)
          const close = line.indexOf('*/', at)
          if (close < 0 && open < 0) return
          if (open >= 0 && (close < 0 || open < close)) {
            this.state = { kind: 'block', depth: state.depth + 1 }
            at = open + 2
          } else {
            this.state = state.depth === 1 ? { kind: 'plain' } : { kind: 'block', depth: state.depth - 1 }
            at = close + 2
          }
          break
        }
      }
    }
  }

  /** Scans plain SQL from `at` until something opens; returns where to go on, or -1 at a line comment. */
  private plain(line: string, at: number): number {
    for (let i = at; i < line.length; i++) {
      const char = line[i]
      if (char === '-' && line[i + 1] === '-') return -1
      if (char === '/' && line[i + 1] === '*') {
        this.state = { kind: 'block', depth: 1 }
        return i + 2
      }
      if (char === "'") {
        const before = line[i - 1] ?? ''
        const escapes = (before === 'E' || before === 'e') && !/[A-Za-z0-9_$]/.test(line[i - 2] ?? '')
        this.state = { kind: 'single', escapes }
        return i + 1
      }
      if (char === '"') {
        this.state = { kind: 'double' }
        return i + 1
      }
      if (char === '$' && !/[A-Za-z0-9_]/.test(line[i - 1] ?? '')) {
        const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(line.slice(i, i + 66))?.[0]
        if (tag) {
          this.state = { kind: 'dollar', tag }
          return i + tag.length
        }
      }
    }
    return line.length
  }
}

type State =
  | { kind: 'plain' }
  | { kind: 'single'; escapes: boolean }
  | { kind: 'double' }
  | { kind: 'dollar'; tag: string }
  | { kind: 'block'; depth: number }

/** Where the quote that closes a string or identifier is, from `at`; -1 when it goes on past the line. */
function closingQuote(line: string, at: number, quote: string, backslashEscapes: boolean): number {
  for (let i = at; i < line.length; i++) {
    const char = line[i]
    if (backslashEscapes && char === '\\') {
      i += 1
      continue
    }
    if (char !== quote) continue
    if (line[i + 1] === quote) {
      i += 1
      continue
    }
    return i
  }
  return -1
}
