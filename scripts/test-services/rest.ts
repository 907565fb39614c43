// PostgREST stand-in: serves /rest/v1/<table> the way Supabase (Kong + PostgREST) does for what
// supabase-js v2 sends. Every request runs in ONE transaction under `SET LOCAL ROLE <jwt role>`,
// so grants and RLS are enforced by Postgres itself, not re-implemented here.
// Unsupported PostgREST syntax is rejected with a 400 (never silently ignored), so a query that
// passes here cannot mean something different on the real thing.
// Supabase's gateway in front of it (gateway.ts) checks the API key and the user's token, serves the
// project's JWKS, and routes /functions/v1/<name> to the edge functions (functions.ts).
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import pg from 'pg'
import type { PoolClient } from 'pg'
import { Gateway, KEY_STATES, type KeyState, type KeyUse, type ProjectKeys } from './gateway.js'
import type { JwtClaims } from './jwt.js'
import { FaultSwitch } from './faults.js'

export interface RestOptions {
  /** Connection string for the `authenticator` role (PostgREST's login role). */
  databaseUrl: string
  keys: ProjectKeys
  host?: string
  port?: number
}

/** lose-answer: the request is carried out (and committed), then the connection is dropped instead of answering. */
export type RestFaultMode = 'none' | 'reset' | 'status' | 'slow' | 'hang' | 'lose-answer'

export interface RestFault {
  mode: RestFaultMode
  /** mode "status": the HTTP status to answer (e.g. 503, 500). */
  status?: number
  /** mode "slow": delay before the request is processed. */
  delayMs?: number
  /** Only requests with these methods are faulted (default: all). */
  methods?: string[]
  /** Only requests whose path starts with this, e.g. /functions/v1/ or /rest/v1/ (default: all). */
  prefix?: string
  /** How many matching requests the fault applies to (default: unlimited). */
  count?: number
  /** How many matching requests pass untouched before the fault applies (default 0). */
  skip?: number
}

export interface RestStats {
  requests: number
  byMethod: Record<string, number>
  faulted: number
  /** The API keys the gateway accepted, by kind, and how often an opaque key also came as the bearer token. */
  keys: KeyUse
}

interface PgrstError {
  code: string | null
  message: string
  details: string | null
  hint: string | null
}

/** What Supabase's gateway (Kong, the functions relay) answers itself. */
interface GatewayError {
  message: string
  code?: string | number | null
  hint?: string | null
  details?: string | null
}

/** An error answered as-is: PostgREST's JSON error shape plus an HTTP status. */
class HttpError extends Error {
  readonly status: number
  readonly body: PgrstError | GatewayError
  readonly headers: Record<string, string>
  constructor(status: number, body: PgrstError | GatewayError, headers: Record<string, string> = {}) {
    super(body.message)
    this.status = status
    this.body = body
    this.headers = headers
  }
}

const pgrst = (status: number, code: string, message: string, details: string | null = null, hint: string | null = null): HttpError =>
  new HttpError(status, { code, details, hint, message })

const parseError = (message: string, details: string | null = null): HttpError => pgrst(400, 'PGRST100', message, details)

// ---------------------------------------------------------------------------------------------
// Query-string parsing: PostgREST's grammar, restricted to the subset we support.

/** Quote an identifier for SQL ("" doubling), as PostgREST does. */
export const qi = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** Column names: anything but the characters PostgREST's grammar reserves. */
const COLUMN_RE = /^[^\s,.:()"*!>-]+$/
const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict'])

interface Filter {
  column: string
  negate: boolean
  op: string
  value: string
}

interface OrderTerm {
  column: string
  desc: boolean
  nulls?: 'first' | 'last'
}

interface SelectItem {
  column: string
  alias?: string
  cast?: string
}

interface Query {
  select: SelectItem[] | '*'
  filters: Filter[]
  order: OrderTerm[]
  limit?: number
  offset?: number
  columns?: string[]
  onConflict?: string[]
}

function parseColumn(raw: string, context: string): string {
  if (!COLUMN_RE.test(raw)) {
    throw parseError(`"failed to parse ${context} (${raw})" (line 1, column 1)`, `unsupported syntax in "${raw}"`)
  }
  return raw
}

function parseSelect(raw: string): SelectItem[] | '*' {
  if (raw === '' || raw === '*') return '*'
  return raw.split(',').map((item): SelectItem => {
    // alias:column::cast. Embedded resources, JSON paths and spreads are not supported here.
    const m = /^(?:([^:]+):(?!:))?([^:]+?)(?:::([a-zA-Z_][a-zA-Z0-9_ ]*))?$/.exec(item)
    if (!m || item.includes('(') || item.includes('->')) {
      throw parseError(`"failed to parse select parameter (${raw})" (line 1, column 1)`, `unsupported select item "${item}"`)
    }
    const column = parseColumn(m[2] ?? '', 'select parameter')
    const out: SelectItem = { column }
    if (m[1] !== undefined) out.alias = parseColumn(m[1], 'select parameter')
    if (m[3] !== undefined) out.cast = m[3]
    return out
  })
}

function parseOrder(raw: string): OrderTerm[] {
  return raw.split(',').map((term): OrderTerm => {
    const [col = '', ...mods] = term.split('.')
    const out: OrderTerm = { column: parseColumn(col, 'order'), desc: false }
    for (const mod of mods) {
      if (mod === 'asc') out.desc = false
      else if (mod === 'desc') out.desc = true
      else if (mod === 'nullsfirst') out.nulls = 'first'
      else if (mod === 'nullslast') out.nulls = 'last'
      else
        throw parseError(
          `"failed to parse order (${raw})" (line 1, column 1)`,
          `unexpected "${mod}" expecting "asc", "desc", "nullsfirst" or "nullslast"`
        )
    }
    return out
  })
}

function parseNonNegInt(raw: string, name: string): number {
  if (!/^\d+$/.test(raw)) throw parseError(`"failed to parse ${name} parameter (${raw})" (line 1, column 1)`)
  return Number(raw)
}

const FILTER_OPS = new Set(['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'is', 'in', 'isdistinct'])

function parseFilter(column: string, raw: string): Filter {
  if (column === 'or' || column === 'and' || column.includes('.')) {
    throw parseError(
      `"failed to parse logic tree (${raw})" (line 1, column 1)`,
      `logical/embedded filters are not supported by the stand-in: ${column}`
    )
  }
  parseColumn(column, 'filter')
  let rest = raw
  let negate = false
  if (rest.startsWith('not.')) {
    negate = true
    rest = rest.slice(4)
  }
  const dot = rest.indexOf('.')
  const op = dot < 0 ? rest : rest.slice(0, dot)
  if (dot < 0 || !FILTER_OPS.has(op)) {
    throw parseError(`"failed to parse filter (${raw})" (line 1, column 1)`, `unexpected "${op}" expecting operator`)
  }
  return { column, negate, op, value: rest.slice(dot + 1) }
}

/** Parse `(a,b,"c,d")` the way PostgREST does: comma separated, double quotes protect commas. */
function parseInList(raw: string): string[] {
  if (!raw.startsWith('(') || !raw.endsWith(')')) {
    throw parseError(`"failed to parse filter (in.${raw})" (line 1, column 1)`, 'expecting "("')
  }
  const inner = raw.slice(1, -1)
  if (inner === '') return []
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]
    if (ch === '"') quoted = !quoted
    else if (ch === '\\' && quoted && i + 1 < inner.length) cur += inner[++i]
    else if (ch === ',' && !quoted) {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  out.push(cur)
  return out
}

/** Parse `columns="a","b"` (supabase-js sends it for array inserts). */
function parseColumnsParam(raw: string): string[] {
  return raw.split(',').map(c => parseColumn(c.trim().replace(/^"(.*)"$/, '$1'), 'columns'))
}

export function parseQuery(params: URLSearchParams): Query {
  const q: Query = { select: '*', filters: [], order: [] }
  for (const [key, value] of params) {
    switch (key) {
      case 'select':
        q.select = parseSelect(value)
        break
      case 'order':
        q.order = parseOrder(value)
        break
      case 'limit':
        q.limit = parseNonNegInt(value, 'limit')
        break
      case 'offset':
        q.offset = parseNonNegInt(value, 'offset')
        break
      case 'columns':
        q.columns = parseColumnsParam(value)
        break
      case 'on_conflict':
        q.onConflict = value.split(',').map(c => parseColumn(c, 'on_conflict'))
        break
      default:
        if (!RESERVED_PARAMS.has(key)) q.filters.push(parseFilter(key, value))
    }
  }
  return q
}

// ---------------------------------------------------------------------------------------------
// SQL building. Values are ALWAYS bind parameters, sent untyped so Postgres infers the column
// type (like PostgREST's `unknown` literals): a bad uuid yields 22P02 from Postgres itself.

class Params {
  readonly values: unknown[] = []
  add(v: unknown): string {
    this.values.push(v)
    return `$${this.values.length}`
  }
}

function filterSql(f: Filter, p: Params): string {
  const col = qi(f.column)
  let sql: string
  switch (f.op) {
    case 'eq':
      sql = `${col} = ${p.add(f.value)}`
      break
    case 'neq':
      sql = `${col} <> ${p.add(f.value)}`
      break
    case 'gt':
      sql = `${col} > ${p.add(f.value)}`
      break
    case 'gte':
      sql = `${col} >= ${p.add(f.value)}`
      break
    case 'lt':
      sql = `${col} < ${p.add(f.value)}`
      break
    case 'lte':
      sql = `${col} <= ${p.add(f.value)}`
      break
    // PostgREST accepts * as the wildcard because % is awkward in URLs.
    case 'like':
      sql = `${col} LIKE ${p.add(f.value.replaceAll('*', '%'))}`
      break
    case 'ilike':
      sql = `${col} ILIKE ${p.add(f.value.replaceAll('*', '%'))}`
      break
    case 'isdistinct':
      sql = `${col} IS DISTINCT FROM ${p.add(f.value)}`
      break
    case 'in':
      sql = `${col} = ANY(${p.add(parseInList(f.value))})`
      break
    case 'is': {
      const v = f.value.toLowerCase()
      const keyword = { null: 'NULL', not_null: 'NOT NULL', true: 'TRUE', false: 'FALSE', unknown: 'UNKNOWN' }[v]
      if (!keyword) {
        throw parseError(
          `"failed to parse filter (is.${f.value})" (line 1, column 4)`,
          'unexpected value expecting null, not_null, true, false or unknown'
        )
      }
      sql = `${col} IS ${keyword}`
      break
    }
    default:
      throw parseError(`"failed to parse filter (${f.op})"`)
  }
  return f.negate ? `NOT (${sql})` : sql
}

function whereSql(filters: Filter[], p: Params): string {
  return filters.length ? ` WHERE ${filters.map(f => filterSql(f, p)).join(' AND ')}` : ''
}

function selectListSql(select: Query['select']): string {
  if (select === '*') return '*'
  return select
    .map(s => {
      const expr = s.cast ? `${qi(s.column)}::${s.cast}` : qi(s.column)
      // PostgREST names a cast column after the column, not "column::type".
      return s.alias || s.cast ? `${expr} AS ${qi(s.alias ?? s.column)}` : expr
    })
    .join(', ')
}

function orderSql(order: OrderTerm[]): string {
  if (!order.length) return ''
  return ` ORDER BY ${order
    .map(o => `${qi(o.column)} ${o.desc ? 'DESC' : 'ASC'}${o.nulls ? ` NULLS ${o.nulls.toUpperCase()}` : ''}`)
    .join(', ')}`
}

/** Aggregate the rows of `source` into the JSON PostgREST would answer (built by Postgres, so
 *  bigint, numeric and timestamptz render exactly as PostgREST renders them). */
function aggregateSql(source: string, select: Query['select'], stripNulls: boolean): string {
  const agg = `coalesce(json_agg(_pgrst_t), '[]')`
  const one = `(json_agg(_pgrst_t) -> 0)`
  const wrap = (e: string): string => (stripNulls ? `json_strip_nulls(${e})` : e)
  return `SELECT ${wrap(agg)}::text AS body, ${wrap(one)}::text AS one, count(*)::int AS n
    FROM (SELECT ${selectListSql(select)} FROM ${source}) _pgrst_t`
}

// ---------------------------------------------------------------------------------------------
// Postgres error → HTTP status, following PostgREST's pgErrorStatus table.

export function pgErrorStatus(code: string, role: string): number {
  if (code === '42501') return role === 'anon' ? 401 : 403
  if (code === '23503' || code === '23505') return 409
  if (code === '25006') return 405
  if (code === 'P0001') return 400
  if (code === '42883' || code === '42P01') return 404
  if (code === '42P17') return 500
  if (code.startsWith('08') || code.startsWith('53')) return 503
  if (code.startsWith('0L') || code.startsWith('0P') || code.startsWith('28')) return 403
  if (code.startsWith('54')) return 413
  if (['09', '25', '2D', '38', '39', '3B', '40', '55', '57', '58', 'F0', 'HV', 'P0', 'XX'].some(p => code.startsWith(p))) return 500
  return 400 // includes 22xxx (bad input), 23514 (check), 42703 (unknown column)
}

interface DbError extends Error {
  code?: string
  detail?: string
  hint?: string
}

/** Errors meaning "the database is not there" rather than "the query is wrong". */
function isConnectionError(err: DbError): boolean {
  const code = err.code ?? ''
  // Node socket errors (ECONNREFUSED...), pg's "Connection terminated", and admin shutdown.
  return code.startsWith('E') || code === '' || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03'
}

const dbUnavailable = (err: Error): HttpError => pgrst(503, 'PGRST001', 'Database client error. Retrying the connection.', err.message)

// ---------------------------------------------------------------------------------------------
// The server.

interface Prefer {
  representation: boolean
  countExact: boolean
  resolution?: 'merge' | 'ignore'
  missingDefault: boolean
}

function parsePrefer(header: string | undefined): Prefer {
  const tokens = (header ?? '')
    .split(',')
    .map(t => t.trim())
    .filter(Boolean)
  const prefer: Prefer = { representation: false, countExact: false, missingDefault: false }
  for (const t of tokens) {
    if (t === 'return=representation') prefer.representation = true
    else if (t === 'count=exact' || t === 'count=planned' || t === 'count=estimated') prefer.countExact = true
    else if (t === 'resolution=merge-duplicates') prefer.resolution = 'merge'
    else if (t === 'resolution=ignore-duplicates') prefer.resolution = 'ignore'
    else if (t === 'missing=default') prefer.missingDefault = true
  }
  return prefer
}

type Shape = { singular: boolean; stripNulls: boolean }

/** Accept → array or singular object; unknown media types are a 406 as in PostgREST. */
function parseAccept(header: string | undefined): Shape {
  const accept = (header ?? '').trim()
  if (accept === '' || accept === '*/*') return { singular: false, stripNulls: false }
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map(s => s.trim())
    const stripNulls = params.includes('nulls=stripped')
    if (type === 'application/vnd.pgrst.object+json' || type === 'application/vnd.pgrst.object') return { singular: true, stripNulls }
    if (['application/json', 'application/vnd.pgrst.array+json', 'application/*', '*/*'].includes(type))
      return { singular: false, stripNulls }
  }
  throw pgrst(406, 'PGRST107', `None of these media types are available: ${accept}`)
}

export class RestServer {
  readonly server: http.Server
  private readonly pool: pg.Pool
  private readonly opts: RestOptions
  private readonly faults = new FaultSwitch<RestFault>({ mode: 'none' })
  private readonly functions = new Map<string, { port: number; verifyJwt: boolean }>()
  private stats: RestStats = emptyStats()
  readonly gateway: Gateway
  /** Called when a test switches the project's keys: the daemon restarts the functions with the variables of the new state. */
  onKeyState: (state: KeyState) => Promise<void> = async () => {}

  constructor(opts: RestOptions) {
    this.opts = opts
    this.gateway = new Gateway(opts.keys)
    this.pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 })
    // Idle clients die when Postgres is stopped by a test; without a listener that would crash us.
    this.pool.on('error', () => {})
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err))
        if (!res.headersSent) send(res, 500, { code: null, message: e.message, details: null, hint: null })
      })
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve())
    })
    const addr = this.server.address()
    if (addr === null || typeof addr === 'string') throw new Error('REST server has no TCP address')
    return addr.port
  }

  async close(): Promise<void> {
    this.faults.set({ mode: 'none' })
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
    await this.pool.end()
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = (req.method ?? 'GET').toUpperCase()
    if (url.pathname.startsWith('/__control/')) return this.control(method, url.pathname, req, res)

    this.stats.requests += 1
    this.stats.byMethod[method] = (this.stats.byMethod[method] ?? 0) + 1

    const fault = this.faults.take(
      f => (!f.methods || f.methods.map(m => m.toUpperCase()).includes(method)) && (!f.prefix || url.pathname.startsWith(f.prefix))
    )
    if (fault) this.stats.faulted += 1
    if (fault) {
      switch (fault.mode) {
        case 'reset':
          req.socket.destroy()
          return
        case 'status': {
          const status = fault.status ?? 503
          await readBody(req).catch(() => Buffer.alloc(0))
          const body: PgrstError =
            status === 503
              ? { code: 'PGRST001', message: 'Database client error. Retrying the connection.', details: 'injected fault', hint: null }
              : { code: null, message: `Injected fault (HTTP ${status})`, details: null, hint: null }
          send(res, status, body)
          return
        }
        case 'slow':
          await new Promise(r => setTimeout(r, fault.delayMs ?? 1000))
          break
        case 'hang':
          await this.faults.hang()
          if (req.socket.destroyed) return
          break
        case 'lose-answer':
          res.writeHead = (() => res) as typeof res.writeHead
          res.end = (() => {
            req.socket.destroy()
            return res
          }) as typeof res.end
          break
      }
    }

    try {
      if (url.pathname.startsWith('/functions/v1/')) await this.invokeFunction(method, url, req, res)
      else if (method === 'GET' && url.pathname === '/auth/v1/.well-known/jwks.json') send(res, 200, this.gateway.jwks())
      else await this.api(method, url, req, res)
    } catch (err) {
      if (err instanceof HttpError) {
        send(res, err.status, err.body, err.headers)
        return
      }
      throw err
    }
  }

  /** Routes /functions/v1/<name> to a running edge function (see functions.ts). */
  routeFunction(name: string, port: number, verifyJwt: boolean): void {
    this.functions.set(name, { port, verifyJwt })
  }

  /** Supabase's gateway in front of an edge function: the JWT check unless verify_jwt = false, then a plain proxy. */
  private async invokeFunction(method: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [, , , name = ''] = url.pathname.split('/')
    const fn = this.functions.get(name)
    if (!fn) throw new HttpError(404, { code: 'NOT_FOUND', message: 'Requested function was not found' })
    if (fn.verifyJwt && !this.gateway.verifiesJwt(header(req, 'authorization'))) {
      throw new HttpError(401, { code: 401, message: 'Invalid JWT' })
    }
    const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req)
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'host')
    )
    let answer: Response
    try {
      answer = await fetch(`http://127.0.0.1:${fn.port}${url.pathname.slice('/functions/v1'.length)}${url.search}`, {
        method,
        headers,
        body
      })
    } catch {
      throw new HttpError(502, { message: 'An invalid response was received from the upstream server' })
    }
    const text = Buffer.from(await answer.arrayBuffer())
    res.writeHead(answer.status, { ...Object.fromEntries(answer.headers), 'content-length': String(text.length) })
    res.end(text)
  }

  private async control(method: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (method === 'GET' && path === '/__control/stats') return send(res, 200, this.stats)
    if (method === 'POST' && path === '/__control/reset-stats') {
      this.stats = emptyStats()
      return send(res, 200, this.stats)
    }
    if (method === 'POST' && path === '/__control/functions') {
      // Redeploy a function with another verify_jwt, as `supabase functions deploy [--no-verify-jwt]` does;
      // with a port, deploy one a test started itself (with its own secrets) under that name.
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { name?: string; verifyJwt?: boolean; port?: number }
      const name = body.name ?? ''
      if (typeof body.verifyJwt !== 'boolean') return send(res, 400, { message: 'expected {name, verifyJwt[, port]}' })
      if (Number.isInteger(body.port)) this.routeFunction(name, body.port as number, body.verifyJwt)
      const fn = this.functions.get(name)
      if (!fn) return send(res, 400, { message: `no function ${name} is running: pass the port of one` })
      fn.verifyJwt = body.verifyJwt
      return send(res, 200, { name, ...fn })
    }
    if (method === 'POST' && path === '/__control/project') {
      // The dashboard's API key settings: which keys the project has (gateway.ts), and the functions redeployed with them.
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { keys?: KeyState }
      if (!body.keys || !KEY_STATES.includes(body.keys)) return send(res, 400, { message: `expected {keys: ${KEY_STATES.join(' | ')}}` })
      if (body.keys !== this.gateway.state) {
        this.gateway.state = body.keys
        await this.onKeyState(body.keys)
      }
      return send(res, 200, { keys: this.gateway.state })
    }
    if (method === 'POST' && path === '/__control/faults') {
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as RestFault
      if (!['none', 'reset', 'status', 'slow', 'hang', 'lose-answer'].includes(body.mode)) {
        return send(res, 400, { message: `unknown fault mode: ${String(body.mode)}` })
      }
      this.faults.set(body)
      return send(res, 200, this.faults.current)
    }
    return send(res, 404, { message: 'unknown control route' })
  }

  /** The gateway's key-auth and JWT check (gateway.ts). Returns the verified claims. */
  private authenticate(req: IncomingMessage): JwtClaims {
    const answer = this.gateway.authorize(header(req, 'apikey'), header(req, 'authorization'), this.stats.keys)
    if (!answer.ok) throw new HttpError(answer.status, answer.body, answer.headers)
    return answer.claims
  }

  private async api(method: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^\/rest\/v1\/?(.*)$/.exec(url.pathname)
    if (!m) throw new HttpError(404, { message: 'no Route matched with those values' })
    const claims = this.authenticate(req)
    const role = typeof claims.role === 'string' && claims.role !== '' ? claims.role : 'anon'

    const table = decodeURIComponent(m[1] ?? '')
    if (table === '') return send(res, 200, { swagger: '2.0', info: { title: 'PostgREST stand-in' } })
    if (table.includes('/')) throw pgrst(404, 'PGRST125', `Invalid path specified in request URL`)
    if (table.startsWith('rpc/')) throw pgrst(404, 'PGRST202', 'RPC is not supported by the stand-in')

    const profile = header(req, method === 'GET' || method === 'HEAD' ? 'accept-profile' : 'content-profile')
    if (profile !== undefined && profile !== 'public') {
      throw pgrst(406, 'PGRST106', `Invalid schema: ${profile}`, null, 'Only the following schemas are exposed: public')
    }
    if (!['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'].includes(method)) {
      throw pgrst(405, 'PGRST117', `Unsupported HTTP method: ${method}`)
    }

    const shape = parseAccept(header(req, 'accept'))
    const prefer = parsePrefer(req.headers['prefer'] === undefined ? undefined : String(req.headers['prefer']))
    const query = parseQuery(url.searchParams)
    let body: unknown
    if (method === 'POST' || method === 'PATCH') {
      const raw = (await readBody(req)).toString('utf8')
      try {
        body = JSON.parse(raw)
      } catch {
        throw pgrst(400, 'PGRST102', 'Empty or invalid json')
      }
    }

    let client: PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw dbUnavailable(err as Error)
    }
    let releaseErr: Error | undefined
    try {
      await client.query('BEGIN')
      // Schema cache lookup, as the authenticator (before switching role), like PostgREST's cache.
      const found = await client.query(
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relname = $1 AND c.relkind IN ('r','v','m','f','p')`,
        [table]
      )
      if (found.rowCount === 0) {
        throw pgrst(404, 'PGRST205', `Could not find the table 'public.${table}' in the schema cache`)
      }
      await client.query(`SET LOCAL ROLE ${qi(role)}`)
      await client.query(
        `SELECT set_config('request.jwt.claims', $1, true), set_config('request.method', $2, true),
                set_config('request.path', $3, true), set_config('request.headers', $4, true), set_config('role', $5, true)`,
        [JSON.stringify(claims), method, url.pathname, JSON.stringify(req.headers), role]
      )

      const result = await this.execute(client, method, table, query, body, prefer, shape)

      // `.single()`: anything but exactly one row is a 406 and the write is undone.
      if (shape.singular && result.n !== 1) {
        await client.query('ROLLBACK')
        throw pgrst(406, 'PGRST116', 'JSON object requested, multiple (or no) rows returned', `The result contains ${result.n} rows`)
      }
      await client.query('COMMIT')
      respond(res, method, query, prefer, shape, result)
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      if (err instanceof HttpError) throw err
      const e = err as DbError
      if (isConnectionError(e)) {
        releaseErr = e // drop this connection from the pool
        throw dbUnavailable(e)
      }
      const code = e.code ?? ''
      throw new HttpError(pgErrorStatus(code, role), { code, details: e.detail ?? null, hint: e.hint ?? null, message: e.message })
    } finally {
      client.release(releaseErr)
    }
  }

  private async execute(
    client: PoolClient,
    method: string,
    table: string,
    q: Query,
    body: unknown,
    prefer: Prefer,
    shape: Shape
  ): Promise<ExecResult> {
    const target = `${qi('public')}.${qi(table)}`
    const p = new Params()
    // Writes only ask for rows back when they are shown: RETURNING columns needs SELECT rights.
    const wantRows = method === 'GET' || method === 'HEAD' || prefer.representation
    const returning = wantRows ? `RETURNING ${target}.*` : 'RETURNING 1'

    if (method !== 'GET' && method !== 'HEAD' && (q.order.length || q.limit !== undefined || q.offset !== undefined)) {
      throw parseError('limit/offset/order on writes is not supported by the stand-in')
    }

    let sql: string
    if (method === 'GET' || method === 'HEAD') {
      const where = whereSql(q.filters, p)
      const page = `${q.limit !== undefined ? ` LIMIT ${q.limit}` : ''}${q.offset !== undefined ? ` OFFSET ${q.offset}` : ''}`
      sql = aggregateSql(`(SELECT * FROM ${target}${where}${orderSql(q.order)}${page}) _pgrst_src`, q.select, shape.stripNulls)
      const r = await client.query<AggRow>(sql, p.values)
      let total: number | undefined
      if (prefer.countExact) {
        const c = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${target}${where}`, p.values)
        total = c.rows[0]?.n ?? 0
      }
      return { ...aggRow(r.rows[0]), total, withRows: true }
    }

    if (method === 'POST') {
      const rows = Array.isArray(body) ? body : [body]
      if (!rows.every(r => typeof r === 'object' && r !== null && !Array.isArray(r))) {
        throw pgrst(400, 'PGRST102', 'All object keys must match')
      }
      const cols = q.columns ?? [...new Set(rows.flatMap(r => Object.keys(r as object)))]
      cols.forEach(c => parseColumn(c, 'columns'))
      let insert: string
      if (rows.length === 0) {
        insert = `INSERT INTO ${target} SELECT * FROM ${target} WHERE false ${returning}`
      } else if (cols.length === 0) {
        insert = `INSERT INTO ${target} DEFAULT VALUES ${returning}`
        if (rows.length > 1) throw pgrst(400, 'PGRST102', 'All object keys must match')
      } else {
        const list = cols.map(qi).join(', ')
        let conflict = ''
        if (prefer.resolution) {
          const keys = q.onConflict ?? (await primaryKey(client, table))
          if (!keys.length) throw pgrst(400, 'PGRST100', 'on_conflict is required for a table without a primary key')
          conflict =
            prefer.resolution === 'ignore'
              ? ` ON CONFLICT (${keys.map(qi).join(', ')}) DO NOTHING`
              : ` ON CONFLICT (${keys.map(qi).join(', ')}) DO UPDATE SET ${cols.map(c => `${qi(c)} = EXCLUDED.${qi(c)}`).join(', ')}`
        }
        insert = `INSERT INTO ${target} (${list}) SELECT ${list} FROM json_populate_recordset(null::${target}, ${p.add(JSON.stringify(rows))}::json)${conflict} ${returning}`
      }
      sql = `WITH _pgrst_src AS (${insert}) ${aggregateSql('_pgrst_src', wantRows ? q.select : '*', shape.stripNulls)}`
    } else if (method === 'PATCH') {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw pgrst(400, 'PGRST102', 'Empty or invalid json')
      const cols = Object.keys(body)
      cols.forEach(c => parseColumn(c, 'columns'))
      if (cols.length === 0) {
        // PostgREST treats an empty PATCH as a no-op that touches no row.
        return { body: '[]', one: null, n: 0, total: undefined, withRows: wantRows }
      }
      const list = cols.map(qi).join(', ')
      const payload = p.add(JSON.stringify(body))
      const update = `UPDATE ${target} SET (${list}) = (SELECT ${list} FROM json_populate_record(null::${target}, ${payload}::json))${whereSql(q.filters, p)} ${returning}`
      sql = `WITH _pgrst_src AS (${update}) ${aggregateSql('_pgrst_src', wantRows ? q.select : '*', shape.stripNulls)}`
    } else {
      const del = `DELETE FROM ${target}${whereSql(q.filters, p)} ${returning}`
      sql = `WITH _pgrst_src AS (${del}) ${aggregateSql('_pgrst_src', wantRows ? q.select : '*', shape.stripNulls)}`
    }
    const r = await client.query<AggRow>(sql, p.values)
    return { ...aggRow(r.rows[0]), total: prefer.countExact ? aggRow(r.rows[0]).n : undefined, withRows: wantRows }
  }
}

interface AggRow {
  body: string | null
  one: string | null
  n: number
}

interface ExecResult extends AggRow {
  /** Exact count when `Prefer: count=exact`. */
  total: number | undefined
  /** Whether body/one hold real rows (false for return=minimal writes). */
  withRows: boolean
}

const aggRow = (row: AggRow | undefined): AggRow => ({ body: row?.body ?? '[]', one: row?.one ?? null, n: row?.n ?? 0 })

async function primaryKey(client: PoolClient, table: string): Promise<string[]> {
  const r = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = (quote_ident('public') || '.' || quote_ident($1))::regclass AND i.indisprimary`,
    [table]
  )
  return r.rows.map(row => row.attname)
}

function respond(res: ServerResponse, method: string, q: Query, prefer: Prefer, shape: Shape, r: ExecResult): void {
  const total = r.total === undefined ? '*' : String(r.total)
  let range: string
  if (method === 'GET' || method === 'HEAD') {
    const offset = q.offset ?? 0
    range = r.n > 0 ? `${offset}-${offset + r.n - 1}/${total}` : `*/${total}`
  } else if (method === 'POST') {
    range = `*/${total}`
  } else {
    range = r.n > 0 ? `0-${r.n - 1}/${total}` : `*/${total}`
  }
  const headers: Record<string, string> = { 'Content-Range': range }
  const prefs = [prefer.representation ? 'return=representation' : '', prefer.countExact ? 'count=exact' : ''].filter(Boolean)
  if (prefs.length && method !== 'GET') headers['Preference-Applied'] = prefs.join(', ')

  const showBody = method === 'GET' || (method !== 'HEAD' && prefer.representation)
  const status = method === 'POST' ? 201 : showBody || method === 'GET' || method === 'HEAD' ? 200 : 204
  if (!showBody) {
    res.writeHead(status, headers)
    res.end()
    return
  }
  const contentType = shape.singular ? 'application/vnd.pgrst.object+json; charset=utf-8' : 'application/json; charset=utf-8'
  const text = shape.singular ? (r.one ?? 'null') : (r.body ?? '[]')
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)) })
  res.end(text)
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text))
  })
  res.end(text)
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

const MAX_BODY = 16 * 1024 * 1024

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > MAX_BODY) throw pgrst(413, 'PGRST000', 'Request body too large')
    chunks.push(buf)
  }
  return Buffer.concat(chunks)
}

function emptyStats(): RestStats {
  return { requests: 0, byMethod: {}, faulted: 0, keys: { legacy: 0, secret: 0, publishable: 0, opaqueAsBearer: 0 } }
}

export async function startRest(opts: RestOptions): Promise<{ rest: RestServer; port: number }> {
  const rest = new RestServer(opts)
  const port = await rest.listen()
  return { rest, port }
}
