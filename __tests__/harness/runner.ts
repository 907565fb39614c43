/**
 * GitHub Actions runner emulator for a JavaScript (node) action with `main` and `post`.
 *
 * Emulates what actions/runner does on Linux (see /work/shared/runner-semantics.md):
 * - each hook is its own `node <actionDir>/<runs.main|runs.post>` process, cwd = GITHUB_WORKSPACE;
 * - inputs exported as INPUT_<NAME> (spaces -> `_`, upper-cased, dashes kept), action.yml defaults applied;
 * - fresh file-command files per step (GITHUB_STATE, GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY),
 *   parsed after the process exits (also after cancel/kill) like FileCommandManager;
 * - post receives main's state as STATE_<key>;
 * - cancellation: SIGINT to the node pid (not the group), SIGTERM after 7.5 s, SIGKILL 2.5 s later;
 *   a step timeout uses the same ladder; `killAt` sends SIGKILL outright (worker/VM lost).
 *
 * No global state: every call owns its temp dirs and timers. Waits are only overridable through options.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parse as parseYaml } from 'yaml'

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

export type HookName = 'main' | 'post'
export type StepConclusion = 'success' | 'failure' | 'cancelled'
export type OutputStream = 'stdout' | 'stderr'

/** Runner-side defaults: cancel ladder on Linux. */
export const DEFAULT_INT_TO_TERM_MS = 7_500
export const DEFAULT_TERM_TO_KILL_MS = 2_500
/** Time the server lets post/always() steps run after a cancel (~5 min minus ~15 s) before the worker is killed. */
export const DEFAULT_CANCEL_BUDGET_MS = 285_000

/** One input as declared in action.yml. All scalars are kept as strings (YAML failsafe schema). */
export interface ActionInputSpec {
  description?: string
  required: boolean
  /** `undefined` when action.yml has no `default:`; the runner then exports an empty string. */
  default?: string
  deprecationMessage?: string
}

/** Parsed action.yml (only what the runner needs for a node action). */
export interface ActionManifest {
  /** Absolute action directory. */
  dir: string
  name?: string
  inputs: Record<string, ActionInputSpec>
  outputs: Record<string, { description?: string }>
  runs: {
    using: string
    main: string
    pre?: string
    post?: string
    /** Defaults to `always()` like the runner. */
    postIf: string
  }
}

/** Values of the `github`/`runner` contexts the harness exports as env. All optional; defaults are fake but valid. */
export interface GitHubContextOptions {
  runId: string
  runAttempt: string
  runNumber: string
  repository: string
  sha: string
  ref: string
  workflow: string
  job: string
  /** GITHUB_ACTION: the step id (or `__owner_repo` when the step has none). */
  action: string
  serverUrl: string
  apiUrl: string
  graphqlUrl: string
  eventName: string
  actor: string
  /** Value of `${{ github.token }}` if an input default uses it (registered as a mask). */
  token: string
}

/** A promise factory: the harness calls it right after spawn; when the promise resolves the action is taken. */
export type Trigger = (step: RunningStep) => Promise<unknown>

/** Per-hook controls: cancellation, lost worker, step timeout. */
export interface StepControls {
  /** Job cancel: SIGINT, then SIGTERM after intToTermMs, then SIGKILL after termToKillMs. Conclusion `cancelled`. */
  cancelAt?: Trigger
  /** Worker/VM lost: SIGKILL outright. Conclusion `failure`. */
  killAt?: Trigger
  /** Step `timeout-minutes`: same ladder as a cancel, conclusion `failure`. */
  timeoutMs?: number
}

/** Options shared by runHook and runJob. */
export interface CommonRunOptions {
  /** Directory containing action.yml (or pass `manifest`). */
  actionDir: string
  /** Pre-parsed manifest (else loaded from actionDir). */
  manifest?: ActionManifest
  /** GITHUB_WORKSPACE and the process cwd. */
  workspace: string
  /** `with:` values. Non-strings are stringified. Missing declared inputs get their action.yml default. */
  inputs?: Record<string, string | number | boolean>
  /** Extra env, applied last (so it can override anything). `undefined` removes a variable. */
  env?: Record<string, string | undefined>
  github?: Partial<GitHubContextOptions>
  /** Node binary. Default: <repo>/node_modules/node/bin/node. */
  nodeBin?: string
  /** SIGINT -> SIGTERM wait. Default 7500 ms. Harness option only (never read from env). */
  intToTermMs?: number
  /** SIGTERM -> SIGKILL wait. Default 2500 ms. Harness option only (never read from env). */
  termToKillMs?: number
  /** Keep temp dirs (RUNNER_TEMP, HOME, file commands) for inspection. */
  keepTemp?: boolean
  /** Use this RUNNER_TEMP (not deleted by the harness). Default: fresh temp dir per call. */
  runnerTemp?: string
  /** Use this HOME (not deleted by the harness). Default: a fresh empty dir, so nothing leaks from the dev's ~. */
  home?: string
  /** Live log hook, e.g. for debugging: called per line as it arrives. */
  onLine?: (line: string, stream: OutputStream, hook: HookName) => void
  /** After exit, how long to wait for stdout/stderr to close (a grandchild may hold them). Default 2000 ms. */
  stdioGraceMs?: number
}

export interface RunHookOptions extends CommonRunOptions, StepControls {
  /** Which hook to run. Default `main`. */
  hook?: HookName
  /** State exported as STATE_<key> (for post). */
  state?: Record<string, string>
}

export interface RunJobOptions extends CommonRunOptions, StepControls {
  /** Controls for the post process (its timeoutMs defaults to the step's timeoutMs, as on the runner). */
  postControls?: StepControls
  /** Do not run post at all (VM lost / runner shut down). */
  skipPost?: boolean
  /** A `killAt` on main means the worker is lost, so post is skipped; set this to run it anyway. */
  runPostAfterKill?: boolean
  /** Give post this state instead of main's. */
  postState?: Record<string, string>
  /** After a cancel, post is SIGKILLed when this budget (from the cancel) runs out. Default 285000 ms. */
  cancelBudgetMs?: number
}

/** What a trigger callback can wait on. All waits reject once the process has exited without a match. */
export interface RunningStep {
  readonly hook: HookName
  readonly pid: number
  /** Milliseconds since spawn. */
  elapsedMs(): number
  /** Aborted when the process exits: use it to cancel long-polls in custom triggers. */
  readonly signal: AbortSignal
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  /** Resolves with the value once GITHUB_STATE has `key` (matching `expected`: exact value or predicate). */
  waitForState(key: string, expected?: string | ((value: string) => boolean)): Promise<string>
  /** Resolves with the match once stdout (all of it so far) matches. */
  waitForStdout(re: RegExp): Promise<RegExpMatchArray>
  /** Same for stderr. */
  waitForStderr(re: RegExp): Promise<RegExpMatchArray>
  /** Current parsed state (lenient: an unterminated heredoc at the end is ignored). */
  readState(): Promise<Record<string, string>>
}

/** A `::command props::message` line, as ActionCommandManager parses it. */
export interface WorkflowCommand {
  /** Lower-cased command name: error, warning, notice, debug, add-mask, group, endgroup, ... */
  command: string
  properties: Record<string, string>
  message: string
  stream: OutputStream
  atMs: number
  raw: string
}

export interface SentSignal {
  signal: 'SIGINT' | 'SIGTERM' | 'SIGKILL'
  atMs: number
  reason: 'cancel' | 'timeout' | 'kill' | 'cancel-budget'
}

export interface TriggerRecord {
  kind: 'cancel' | 'kill' | 'timeout' | 'cancel-budget'
  status: 'fired' | 'ignored' | 'error'
  /** ms since spawn when it resolved (fired) or when it was found moot. */
  atMs: number
  reason?: string
}

export interface HookResult {
  hook: HookName
  pid: number
  exitCode: number | null
  signal: NodeJS.Signals | null
  conclusion: StepConclusion
  /** Signals the harness sent, in order. */
  signalsSent: SentSignal[]
  triggers: TriggerRecord[]
  /** ms between spawn and exit. */
  durationMs: number
  /** ms since spawn of the first cancel/timeout SIGINT, if any. */
  cancelledAtMs: number | null
  /** True unless SIGTERM or SIGKILL had to be sent. */
  exitedBeforeSigterm: boolean
  /** GITHUB_STATE as the runner reads it (plus legacy ::save-state). */
  state: Record<string, string>
  /** GITHUB_OUTPUT (plus legacy ::set-output). */
  outputs: Record<string, string>
  /** GITHUB_ENV: env for the following steps. */
  envFile: Record<string, string>
  /** GITHUB_PATH: dirs prepended to PATH for the following steps. */
  pathFile: string[]
  /** GITHUB_STEP_SUMMARY content. */
  summary: string
  /** File command parse errors: the runner fails the step on those. Entries before the error are kept. */
  fileCommandErrors: string[]
  stdout: string
  stderr: string
  stdoutLines: string[]
  stderrLines: string[]
  commands: WorkflowCommand[]
  /** Values from ::add-mask:: (and github.token if used). Masks only affect the shown log; stdout stays raw. */
  masks: string[]
  /** Runner-side warnings (unexpected inputs, ...). */
  runnerWarnings: string[]
  /** The INPUT_* / STATE_* env the process got. */
  inputEnv: Record<string, string>
  stateEnv: Record<string, string>
  /** RUNNER_TEMP used (deleted unless keepTemp or caller-provided). */
  runnerTemp: string
}

export interface JobResult {
  main: HookResult
  post: HookResult | null
  /** Why post did not run (null if it ran). */
  postSkippedReason: string | null
  /** Job status as seen by always()/cancelled(). */
  jobStatus: StepConclusion
}

// ---------------------------------------------------------------------------------------------------------------
// action.yml
// ---------------------------------------------------------------------------------------------------------------

const SUPPORTED_NODE = new Set(['node12', 'node16', 'node20', 'node24'])

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function optString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

/** Parse `<actionDir>/action.yml` (or action.yaml). Scalars stay strings, like the runner's template reader. */
export async function loadActionManifest(actionDir: string): Promise<ActionManifest> {
  const dir = path.resolve(actionDir)
  let text: string | undefined
  for (const name of ['action.yml', 'action.yaml']) {
    try {
      text = await readFile(path.join(dir, name), 'utf8')
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  if (text === undefined) throw new Error(`no action.yml or action.yaml in ${dir}`)
  return parseActionManifest(text, dir)
}

/** Parse action.yml text. Exported for tests of the manifest itself. */
export function parseActionManifest(text: string, dir: string): ActionManifest {
  const doc: unknown = parseYaml(text, { schema: 'failsafe' })
  if (!isRecord(doc)) throw new Error('action.yml: top level must be a mapping')
  const runs = doc['runs']
  if (!isRecord(runs)) throw new Error('action.yml: missing runs')
  const using = optString(runs['using'])
  if (!using || !SUPPORTED_NODE.has(using)) throw new Error(`action.yml: runs.using '${using}' is not a node runtime`)
  const main = optString(runs['main'])
  if (!main) throw new Error('action.yml: runs.main is required')

  const inputs: Record<string, ActionInputSpec> = {}
  const rawInputs = doc['inputs']
  if (rawInputs !== undefined && rawInputs !== null && rawInputs !== '') {
    if (!isRecord(rawInputs)) throw new Error('action.yml: inputs must be a mapping')
    for (const [name, meta] of Object.entries(rawInputs)) {
      const m = isRecord(meta) ? meta : {}
      const spec: ActionInputSpec = { required: optString(m['required'])?.toLowerCase() === 'true' }
      const description = optString(m['description'])
      if (description !== undefined) spec.description = description
      // `default:` with an empty value parses as '' in failsafe; keep it.
      if ('default' in m) spec.default = optString(m['default']) ?? ''
      const dep = optString(m['deprecationMessage'])
      if (dep !== undefined) spec.deprecationMessage = dep
      inputs[name] = spec
    }
  }
  const outputs: Record<string, { description?: string }> = {}
  const rawOutputs = doc['outputs']
  if (isRecord(rawOutputs)) {
    for (const [name, meta] of Object.entries(rawOutputs)) {
      const d = isRecord(meta) ? optString(meta['description']) : undefined
      outputs[name] = d === undefined ? {} : { description: d }
    }
  }
  const manifest: ActionManifest = {
    dir,
    inputs,
    outputs,
    runs: { using, main, postIf: optString(runs['post-if']) ?? 'always()' }
  }
  const name = optString(doc['name'])
  if (name !== undefined) manifest.name = name
  const post = optString(runs['post'])
  if (post) manifest.runs.post = post
  const pre = optString(runs['pre'])
  if (pre) manifest.runs.pre = pre
  return manifest
}

/** `INPUT_<NAME>`: spaces -> `_`, upper-cased, dashes kept (VarUtil.ConvertToEnvVariableFormat). */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

const DEFAULT_GITHUB: GitHubContextOptions = {
  runId: '9000000001',
  runAttempt: '1',
  runNumber: '1',
  repository: 'octo-org/octo-repo',
  sha: '0123456789abcdef0123456789abcdef01234567',
  ref: 'refs/heads/main',
  workflow: 'backup',
  job: 'backup',
  action: 'backup',
  serverUrl: 'https://github.com',
  apiUrl: 'https://api.github.com',
  graphqlUrl: 'https://api.github.com/graphql',
  eventName: 'workflow_dispatch',
  actor: 'octocat',
  token: 'ghs_emulatorFakeToken000000000000000000'
}

/** Minimal `${{ github.x }}` / `${{ runner.x }}` evaluation for input defaults. Anything else is an error. */
function evaluateDefault(raw: string, ctx: Record<string, string>, usedMasks: Set<string>, gh: GitHubContextOptions): string {
  if (!raw.includes('${{')) return raw
  return raw.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_m, expr: string) => {
    const key = expr.trim()
    const v = ctx[key]
    if (v === undefined) throw new Error(`harness: unsupported expression in input default: \${{ ${key} }}`)
    if (key === 'github.token') usedMasks.add(gh.token)
    return v
  })
}

interface ResolvedInputs {
  env: Record<string, string>
  warnings: string[]
  masks: string[]
}

/** Evaluate inputs like the runner: given `with:` (case-insensitive names) + defaults for the rest. */
export function resolveInputs(
  manifest: ActionManifest,
  given: Record<string, string | number | boolean> = {},
  exprContext: Record<string, string> = {},
  gh: GitHubContextOptions = DEFAULT_GITHUB
): ResolvedInputs {
  const env: Record<string, string> = {}
  const warnings: string[] = []
  const masks = new Set<string>()
  const declared = new Map(Object.keys(manifest.inputs).map(k => [k.toLowerCase(), k]))
  const givenLower = new Map<string, string>()
  const unexpected: string[] = []
  for (const [k, v] of Object.entries(given)) {
    givenLower.set(k.toLowerCase(), String(v))
    if (!declared.has(k.toLowerCase())) unexpected.push(k)
    env[inputEnvName(k)] = String(v)
  }
  for (const [name, spec] of Object.entries(manifest.inputs)) {
    if (givenLower.has(name.toLowerCase())) {
      if (spec.deprecationMessage) warnings.push(`Input '${name}' has been deprecated with message: ${spec.deprecationMessage}`)
      continue
    }
    env[inputEnvName(name)] = evaluateDefault(spec.default ?? '', exprContext, masks, gh)
  }
  if (unexpected.length > 0) {
    warnings.push(`Unexpected input(s) '${unexpected.join("', '")}', valid inputs are ['${Object.keys(manifest.inputs).join("', '")}']`)
  }
  return { env, warnings, masks: [...masks] }
}

/** Evaluate `runs.post-if` for the job status. Supports always(), success(), failure(), cancelled(), !cancelled(). */
export function evaluatePostIf(expr: string, jobStatus: StepConclusion): boolean {
  const e = expr
    .trim()
    .replace(/^\$\{\{\s*([\s\S]*?)\s*\}\}$/, '$1')
    .trim()
  switch (e) {
    case 'always()':
      return true
    case 'success()':
      return jobStatus === 'success'
    case 'failure()':
      return jobStatus === 'failure'
    case 'cancelled()':
      return jobStatus === 'cancelled'
    case '!cancelled()':
      return jobStatus !== 'cancelled'
    default:
      throw new Error(`harness: unsupported post-if expression '${expr}'`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// File commands (FileCommandManager) and workflow commands (ActionCommandManager)
// ---------------------------------------------------------------------------------------------------------------

export interface KeyValueParse {
  entries: Record<string, string>
  /** First error; entries before it are kept (the runner sets them as it goes, then fails the step). */
  error: string | null
}

/**
 * Parse a GITHUB_STATE / GITHUB_OUTPUT / GITHUB_ENV file like the runner on Linux: lines split on `\n` only,
 * `key=value` when `=` comes before any `<<`, else heredoc `key<<DELIM` … a line equal to `DELIM`.
 * `lenient` (used while the process is running) ignores an unterminated heredoc at the end instead of failing.
 */
export function parseKeyValueFile(text: string, lenient = false): KeyValueParse {
  const entries: Record<string, string> = {}
  const lines = text.split('\n')
  // A trailing '\n' does not make an extra line (ReadLine returns null at end of text).
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  let i = 0
  while (i < lines.length) {
    const line = lines[i++] ?? ''
    if (line === '') continue
    const eq = line.indexOf('=')
    const hd = line.indexOf('<<')
    if (eq >= 0 && (hd < 0 || eq < hd)) {
      const key = line.slice(0, eq)
      if (key === '') return { entries, error: `Invalid format '${line}'. Name must not be empty` }
      entries[key] = line.slice(eq + 1)
    } else if (hd >= 0 && (eq < 0 || hd < eq)) {
      const key = line.slice(0, hd)
      const delim = line.slice(hd + 2)
      if (key === '' || delim === '') {
        return { entries, error: `Invalid format '${line}'. Name must not be empty and delimiter must not be empty` }
      }
      const value: string[] = []
      let closed = false
      while (i < lines.length) {
        const l = lines[i++] ?? ''
        if (l === delim) {
          closed = true
          break
        }
        value.push(l)
      }
      if (!closed) {
        if (lenient) return { entries, error: null }
        return { entries, error: `Invalid value. Matching delimiter not found '${delim}'` }
      }
      entries[key] = value.join('\n')
    } else {
      if (lenient && i === lines.length && !text.endsWith('\n')) return { entries, error: null } // half-written line
      return { entries, error: `Invalid format '${line}'` }
    }
  }
  return { entries, error: null }
}

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%')
}

function unescapeProperty(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%')
}

const KNOWN_COMMANDS = new Set([
  'error',
  'warning',
  'notice',
  'debug',
  'add-mask',
  'group',
  'endgroup',
  'echo',
  'stop-commands',
  'save-state',
  'set-output',
  'set-env',
  'add-path',
  'add-matcher',
  'remove-matcher'
])

/** Parse one log line as a `::command k=v,k2=v2::message` (ActionCommand.TryParseV2). Null if it is not one. */
export function parseWorkflowCommand(line: string): Omit<WorkflowCommand, 'stream' | 'atMs'> | null {
  const msg = line.trimStart()
  if (!msg.startsWith('::')) return null
  const end = msg.indexOf('::', 2)
  if (end < 0) return null
  const info = msg.slice(2, end)
  const sp = info.indexOf(' ')
  const name = (sp < 0 ? info : info.slice(0, sp)).toLowerCase()
  if (!KNOWN_COMMANDS.has(name)) return null
  const properties: Record<string, string> = {}
  if (sp > 0) {
    for (const prop of info
      .slice(sp + 1)
      .trim()
      .split(',')) {
      if (prop === '') continue
      const eq = prop.indexOf('=')
      if (eq <= 0 || eq === prop.length - 1) continue
      properties[prop.slice(0, eq)] = unescapeProperty(prop.slice(eq + 1))
    }
  }
  return { command: name, properties, message: unescapeData(msg.slice(end + 2)), raw: line }
}

/** Replace every mask value by `***`, like the runner's secret masker does for the shown log. */
export function applyMasks(text: string, masks: readonly string[]): string {
  let out = text
  for (const m of [...masks].filter(x => x.trim() !== '').sort((a, b) => b.length - a.length)) {
    out = out.split(m).join('***')
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Process running
// ---------------------------------------------------------------------------------------------------------------

/** <repo>/node_modules/node/bin/node, the Node 24 the runner would use for `using: node24`. */
export function defaultNodeBin(): string {
  return path.resolve(import.meta.dirname, '..', '..', 'node_modules', 'node', 'bin', 'node')
}

function checkMs(name: string, v: number | undefined, dflt: number): number {
  const ms = v ?? dflt
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`harness: ${name} must be a finite number >= 0, got ${v}`)
  return ms
}

interface FileCommandPaths {
  state: string
  output: string
  env: string
  path: string
  summary: string
}

async function createFileCommands(runnerTemp: string): Promise<FileCommandPaths> {
  // Same layout as the runner: <temp>/_runner_file_commands/<prefix><guid>, fresh per step.
  const dir = path.join(runnerTemp, '_runner_file_commands')
  await mkdir(dir, { recursive: true })
  const suffix = randomUUID()
  const files: FileCommandPaths = {
    state: path.join(dir, `save_state_${suffix}`),
    output: path.join(dir, `set_output_${suffix}`),
    env: path.join(dir, `set_env_${suffix}`),
    path: path.join(dir, `add_path_${suffix}`),
    summary: path.join(dir, `step_summary_${suffix}`)
  }
  await Promise.all(Object.values(files).map(f => writeFile(f, '')))
  return files
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw err
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => clearTimeout(t), { once: true })
  })
}

/** Split like StreamReader.ReadLine: \r\n, \r or \n. */
function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split(/\r\n|\r|\n/)
  if (lines[lines.length - 1] === '') lines.pop()
  return lines
}

interface HookRunContext {
  manifest: ActionManifest
  hook: HookName
  runnerTemp: string
  home: string
  extraPath: string[]
  extraEnv: Record<string, string>
  /** Trigger kinds beyond the user's (cancel budget). */
  budgetKillAt?: Trigger
}

function buildGithub(opts: CommonRunOptions): GitHubContextOptions {
  return { ...DEFAULT_GITHUB, ...opts.github }
}

/** Run one hook (main by default) as the runner would, and wait for it to finish. */
export async function runHook(opts: RunHookOptions): Promise<HookResult> {
  const manifest = opts.manifest ?? (await loadActionManifest(opts.actionDir))
  const temp = await makeJobTemp(opts)
  try {
    return await runHookIn(opts, {
      manifest,
      hook: opts.hook ?? 'main',
      runnerTemp: temp.runnerTemp,
      home: temp.home,
      extraPath: [],
      extraEnv: {}
    })
  } finally {
    await temp.cleanup()
  }
}

interface JobTemp {
  runnerTemp: string
  home: string
  cleanup(): Promise<void>
}

async function makeJobTemp(opts: CommonRunOptions): Promise<JobTemp> {
  const needOwn = opts.runnerTemp === undefined || opts.home === undefined
  const root = needOwn ? await mkdtemp(path.join(os.tmpdir(), 'gha-emu-')) : undefined
  const runnerTemp = opts.runnerTemp ?? path.join(root ?? '', 'runner-temp')
  const home = opts.home ?? path.join(root ?? '', 'home')
  await mkdir(runnerTemp, { recursive: true })
  await mkdir(home, { recursive: true })
  return {
    runnerTemp,
    home,
    cleanup: async () => {
      if (root !== undefined && !opts.keepTemp) await rm(root, { recursive: true, force: true })
    }
  }
}

async function runHookIn(opts: RunHookOptions, ctx: HookRunContext): Promise<HookResult> {
  const { manifest, hook } = ctx
  const script = hook === 'main' ? manifest.runs.main : manifest.runs.post
  if (!script) throw new Error(`harness: action.yml has no runs.${hook}`)
  const scriptPath = path.resolve(manifest.dir, script)
  await stat(scriptPath).catch(() => {
    throw new Error(`harness: ${hook} script not found: ${scriptPath} (did you bundle?)`)
  })
  const nodeBin = opts.nodeBin ?? defaultNodeBin()
  const intToTermMs = checkMs('intToTermMs', opts.intToTermMs, DEFAULT_INT_TO_TERM_MS)
  const termToKillMs = checkMs('termToKillMs', opts.termToKillMs, DEFAULT_TERM_TO_KILL_MS)
  const stdioGraceMs = checkMs('stdioGraceMs', opts.stdioGraceMs, 2_000)
  const workspace = path.resolve(opts.workspace)
  const gh = buildGithub(opts)
  const files = await createFileCommands(ctx.runnerTemp)

  // Context for `${{ }}` in input defaults.
  const exprContext: Record<string, string> = {
    'github.token': gh.token,
    'github.run_id': gh.runId,
    'github.run_attempt': gh.runAttempt,
    'github.run_number': gh.runNumber,
    'github.repository': gh.repository,
    'github.repository_owner': gh.repository.split('/')[0] ?? '',
    'github.sha': gh.sha,
    'github.ref': gh.ref,
    'github.workflow': gh.workflow,
    'github.job': gh.job,
    'github.action': gh.action,
    'github.server_url': gh.serverUrl,
    'github.api_url': gh.apiUrl,
    'github.event_name': gh.eventName,
    'github.actor': gh.actor,
    'github.workspace': workspace,
    'runner.os': 'Linux',
    'runner.arch': 'X64',
    'runner.temp': ctx.runnerTemp
  }
  const inputs = resolveInputs(manifest, opts.inputs, exprContext, gh)
  const stateEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(hook === 'post' ? (opts.state ?? {}) : {})) stateEnv[`STATE_${k}`] = v

  const eventPath = path.join(ctx.runnerTemp, '_github_workflow', 'event.json')
  await mkdir(path.dirname(eventPath), { recursive: true })
  await writeFile(eventPath, JSON.stringify({ inputs: {} }))

  const basePath = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin'
  const env: Record<string, string> = {
    PATH: [...ctx.extraPath, basePath].join(path.delimiter),
    HOME: ctx.home,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_RUN_ID: gh.runId,
    GITHUB_RUN_ATTEMPT: gh.runAttempt,
    GITHUB_RUN_NUMBER: gh.runNumber,
    GITHUB_REPOSITORY: gh.repository,
    GITHUB_REPOSITORY_OWNER: gh.repository.split('/')[0] ?? '',
    GITHUB_SHA: gh.sha,
    GITHUB_REF: gh.ref,
    GITHUB_REF_NAME: gh.ref.replace(/^refs\/(heads|tags)\//, ''),
    GITHUB_WORKFLOW: gh.workflow,
    GITHUB_JOB: gh.job,
    GITHUB_ACTION: gh.action,
    GITHUB_ACTOR: gh.actor,
    GITHUB_EVENT_NAME: gh.eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_SERVER_URL: gh.serverUrl,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_GRAPHQL_URL: gh.graphqlUrl,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'emulator',
    RUNNER_TEMP: ctx.runnerTemp,
    GITHUB_STATE: files.state,
    GITHUB_OUTPUT: files.output,
    GITHUB_ENV: files.env,
    GITHUB_PATH: files.path,
    GITHUB_STEP_SUMMARY: files.summary,
    ...ctx.extraEnv,
    ...inputs.env,
    ...stateEnv
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }

  // ---- spawn --------------------------------------------------------------------------------------------------
  const child = spawn(nodeBin, [scriptPath], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const t0 = performance.now()
  const now = (): number => Math.round((performance.now() - t0) * 10) / 10
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
  spawnError.catch(() => undefined)
  const pid = child.pid
  if (pid === undefined) {
    await spawnError
    throw new Error('harness: spawn failed')
  }

  const exitAbort = new AbortController()
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null; atMs: number } | null = null
  const exited = new Promise<void>(resolve => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal, atMs: now() }
      resolve()
    })
  })
  const streamsClosed = new Promise<void>(resolve => child.once('close', () => resolve()))

  // ---- output capture & command parsing -------------------------------------------------------------------------
  const out = { stdout: '', stderr: '' }
  const partial = { stdout: '', stderr: '' }
  const commands: WorkflowCommand[] = []
  const masks = new Set<string>(inputs.masks)
  const legacyState: Record<string, string> = {}
  const legacyOutputs: Record<string, string> = {}
  let stopToken: string | null = null
  const outputWaiters: Array<() => void> = []
  let streamsDone = false // set once stdout/stderr are fully read after exit

  const handleLine = (line: string, stream: OutputStream): void => {
    opts.onLine?.(line, stream, hook)
    if (stopToken !== null) {
      if (line.trim() === `::${stopToken}::`) stopToken = null
      return
    }
    const cmd = parseWorkflowCommand(line)
    if (!cmd) return
    commands.push({ ...cmd, stream, atMs: now() })
    if (cmd.command === 'add-mask' && cmd.message.trim() !== '') masks.add(cmd.message)
    else if (cmd.command === 'stop-commands' && cmd.message !== '') stopToken = cmd.message
    else if (cmd.command === 'save-state' && cmd.properties['name']) legacyState[cmd.properties['name']] = cmd.message
    else if (cmd.command === 'set-output' && cmd.properties['name']) legacyOutputs[cmd.properties['name']] = cmd.message
  }
  const onData = (stream: OutputStream) => (chunk: string) => {
    out[stream] += chunk
    const buf = partial[stream] + chunk
    const parts = buf.split(/\r\n|\n|\r(?!$)/)
    partial[stream] = parts.pop() ?? ''
    for (const l of parts) handleLine(l, stream)
    for (const w of outputWaiters.slice()) w()
  }
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', onData('stdout'))
  child.stderr.on('data', onData('stderr'))

  // ---- state watching ------------------------------------------------------------------------------------------
  const stateWaiters: Array<() => void> = []
  let watcher: FSWatcher | null = null
  let pollTimer: NodeJS.Timeout | null = null
  const pokeStateWaiters = (): void => {
    for (const w of stateWaiters.slice()) w()
  }
  const startStateWatch = (): void => {
    if (watcher || pollTimer) return
    try {
      watcher = watch(files.state, { persistent: false }, pokeStateWaiters)
      watcher.on('error', () => undefined)
    } catch {
      watcher = null
    }
    pollTimer = setInterval(pokeStateWaiters, 100) // cheap fallback for missed fs events
    pollTimer.unref()
  }
  const stopStateWatch = (): void => {
    watcher?.close()
    watcher = null
    if (pollTimer) clearInterval(pollTimer)
    pollTimer = null
  }
  const readStateLenient = async (): Promise<Record<string, string>> => ({
    ...legacyState,
    ...parseKeyValueFile(await readText(files.state), true).entries
  })

  const notExited = (what: string) => new Error(`harness: ${hook} process exited before ${what}`)

  const step: RunningStep = {
    hook,
    pid,
    elapsedMs: now,
    signal: exitAbort.signal,
    exited,
    readState: readStateLenient,
    waitForState(key, expected) {
      const matches = (v: string | undefined): v is string =>
        v !== undefined && (expected === undefined || (typeof expected === 'string' ? v === expected : expected(v)))
      return new Promise<string>((resolve, reject) => {
        let busy = false
        let again = false
        const check = async (): Promise<void> => {
          if (busy) {
            again = true
            return
          }
          busy = true
          try {
            do {
              again = false
              const wasExited = exitInfo !== null
              const v = (await readStateLenient())[key]
              if (matches(v)) return done(() => resolve(v))
              if (wasExited) return done(() => reject(notExited(`state '${key}' matched`)))
            } while (again)
          } catch (err) {
            done(() => reject(err))
          } finally {
            busy = false
          }
        }
        const done = (fn: () => void): void => {
          const i = stateWaiters.indexOf(poke)
          if (i >= 0) stateWaiters.splice(i, 1)
          fn()
        }
        const poke = (): void => void check()
        stateWaiters.push(poke)
        startStateWatch()
        poke()
      })
    },
    waitForStdout: re => waitForStream('stdout', re),
    waitForStderr: re => waitForStream('stderr', re)
  }

  function waitForStream(stream: OutputStream, re: RegExp): Promise<RegExpMatchArray> {
    const rx = new RegExp(re.source, re.flags.replace(/[gy]/g, ''))
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = out[stream].match(rx)
        if (m) {
          remove()
          resolve(m)
        } else if (exitInfo !== null && streamsDone) {
          remove()
          reject(notExited(`${stream} matched ${re}`))
        }
      }
      const remove = (): void => {
        const i = outputWaiters.indexOf(check)
        if (i >= 0) outputWaiters.splice(i, 1)
      }
      outputWaiters.push(check)
      check()
    })
  }

  // ---- signals, triggers, timeout --------------------------------------------------------------------------------
  const signalsSent: SentSignal[] = []
  const triggers: TriggerRecord[] = []
  let ladderStarted = false
  let cancelledAtMs: number | null = null
  const firedKinds = new Set<TriggerRecord['kind']>()
  const ladderTimers: NodeJS.Timeout[] = []

  const send = (signal: SentSignal['signal'], reason: SentSignal['reason']): void => {
    if (exitInfo !== null) return
    try {
      if (child.kill(signal)) signalsSent.push({ signal, atMs: now(), reason })
    } catch {
      /* process already gone */
    }
  }
  const startLadder = (reason: 'cancel' | 'timeout'): void => {
    if (ladderStarted) return
    ladderStarted = true
    cancelledAtMs = now()
    send('SIGINT', reason)
    ladderTimers.push(
      setTimeout(() => {
        if (exitInfo !== null) return
        send('SIGTERM', reason)
        ladderTimers.push(setTimeout(() => send('SIGKILL', reason), termToKillMs))
      }, intToTermMs)
    )
  }
  const fire = (kind: TriggerRecord['kind']): void => {
    if (exitInfo !== null) {
      triggers.push({ kind, status: 'ignored', atMs: now(), reason: 'process had already exited' })
      return
    }
    triggers.push({ kind, status: 'fired', atMs: now() })
    firedKinds.add(kind)
    if (kind === 'kill' || kind === 'cancel-budget') send('SIGKILL', kind === 'kill' ? 'kill' : 'cancel-budget')
    else startLadder(kind)
  }
  const arm = (kind: TriggerRecord['kind'], trigger: Trigger | undefined): void => {
    if (!trigger) return
    Promise.resolve()
      .then(() => trigger(step))
      .then(
        () => fire(kind),
        (err: unknown) => {
          const reason = err instanceof Error ? err.message : String(err)
          if (exitInfo !== null) triggers.push({ kind, status: 'ignored', atMs: now(), reason: `process exited first (${reason})` })
          else triggers.push({ kind, status: 'error', atMs: now(), reason })
        }
      )
  }
  arm('cancel', opts.cancelAt)
  arm('kill', opts.killAt)
  arm('cancel-budget', ctx.budgetKillAt)
  let timeoutTimer: NodeJS.Timeout | null = null
  if (opts.timeoutMs !== undefined) {
    const ms = checkMs('timeoutMs', opts.timeoutMs, 0)
    timeoutTimer = setTimeout(() => fire('timeout'), ms)
  }

  // ---- wait for exit ---------------------------------------------------------------------------------------------
  try {
    await Promise.race([exited, spawnError])
  } finally {
    if (timeoutTimer) clearTimeout(timeoutTimer)
    for (const t of ladderTimers) clearTimeout(t)
  }
  // Ladder timers may have been pushed after the clear above only if the process was alive; it is not anymore.
  for (const t of ladderTimers) clearTimeout(t)
  const graceAbort = new AbortController()
  await Promise.race([streamsClosed, sleep(stdioGraceMs, graceAbort.signal)])
  graceAbort.abort()
  child.stdout.destroy()
  child.stderr.destroy()
  for (const s of ['stdout', 'stderr'] as const) {
    if (partial[s] !== '') handleLine(partial[s].replace(/\r$/, ''), s)
    partial[s] = ''
  }
  streamsDone = true
  for (const w of outputWaiters.slice()) w()
  exitAbort.abort()
  // Let pending waitForState checks see the exit (they re-read, then reject if still unmatched).
  pokeStateWaiters()
  // Give trigger promises a turn to settle so the record says whether they fired or were ignored.
  await new Promise(r => setImmediate(r))
  stopStateWatch()

  // ---- read file commands like the runner after the process ended ------------------------------------------------
  const fileCommandErrors: string[] = []
  const parseFile = async (file: string, label: string): Promise<Record<string, string>> => {
    const r = parseKeyValueFile(await readText(file))
    if (r.error) fileCommandErrors.push(`Unable to process file command '${label}' successfully: ${r.error}`)
    return r.entries
  }
  const state = { ...legacyState, ...(await parseFile(files.state, 'state')) }
  const outputs = { ...legacyOutputs, ...(await parseFile(files.output, 'output')) }
  const envFile = await parseFile(files.env, 'env')
  const pathFile = (await readText(files.path)).split('\n').filter(l => l !== '')
  const summary = await readText(files.summary)

  const info = exitInfo as { code: number | null; signal: NodeJS.Signals | null; atMs: number } | null
  const exitCode = info?.code ?? null
  let conclusion: StepConclusion
  if (firedKinds.has('kill') || firedKinds.has('cancel-budget')) conclusion = 'failure'
  else if (firedKinds.has('cancel')) conclusion = 'cancelled'
  else if (firedKinds.has('timeout')) conclusion = 'failure'
  else if (exitCode !== 0 || fileCommandErrors.length > 0) conclusion = 'failure'
  else conclusion = 'success'

  // Triggers that never resolved are moot now.
  for (const [kind, t] of [
    ['cancel', opts.cancelAt],
    ['kill', opts.killAt],
    ['cancel-budget', ctx.budgetKillAt]
  ] as const) {
    if (t && !triggers.some(r => r.kind === kind)) {
      triggers.push({ kind, status: 'ignored', atMs: info?.atMs ?? now(), reason: 'process exited before the trigger resolved' })
    }
  }
  if (timeoutTimer && !triggers.some(r => r.kind === 'timeout')) {
    triggers.push({ kind: 'timeout', status: 'ignored', atMs: info?.atMs ?? now(), reason: 'process exited before the timeout' })
  }

  return {
    hook,
    pid,
    exitCode,
    signal: info?.signal ?? null,
    conclusion,
    signalsSent,
    triggers,
    durationMs: info?.atMs ?? now(),
    cancelledAtMs,
    exitedBeforeSigterm: !signalsSent.some(s => s.signal === 'SIGTERM' || s.signal === 'SIGKILL'),
    state,
    outputs,
    envFile,
    pathFile,
    summary,
    fileCommandErrors,
    stdout: out.stdout,
    stderr: out.stderr,
    stdoutLines: splitLines(out.stdout),
    stderrLines: splitLines(out.stderr),
    commands,
    masks: [...masks],
    runnerWarnings: inputs.warnings,
    inputEnv: inputs.env,
    stateEnv,
    runnerTemp: ctx.runnerTemp
  }
}

/**
 * Run main, then post like the runner with `post-if` (default always()): post gets main's state as STATE_*,
 * the same inputs re-evaluated, a fresh GITHUB_OUTPUT, main's GITHUB_ENV/GITHUB_PATH, and the same RUNNER_TEMP.
 */
export async function runJob(opts: RunJobOptions): Promise<JobResult> {
  const manifest = opts.manifest ?? (await loadActionManifest(opts.actionDir))
  const temp = await makeJobTemp(opts)
  try {
    const main = await runHookIn(
      { ...opts, hook: 'main' },
      {
        manifest,
        hook: 'main',
        runnerTemp: temp.runnerTemp,
        home: temp.home,
        extraPath: [],
        extraEnv: {}
      }
    )
    const jobStatus = main.conclusion
    const skip = (reason: string): JobResult => ({ main, post: null, postSkippedReason: reason, jobStatus })

    if (opts.skipPost) return skip('skipPost: runner/VM lost')
    if (main.triggers.some(t => t.kind === 'kill' && t.status === 'fired') && !opts.runPostAfterKill) {
      return skip('main was SIGKILLed by killAt: worker lost, post never runs')
    }
    if (!manifest.runs.post) return skip('action has no runs.post')
    if (!evaluatePostIf(manifest.runs.postIf, jobStatus)) return skip(`post-if '${manifest.runs.postIf}' is false`)

    // After a cancel the remaining budget is shared by post steps; then the worker is killed.
    let budgetKillAt: Trigger | undefined
    if (main.conclusion === 'cancelled' && main.cancelledAtMs !== null) {
      const budget = checkMs('cancelBudgetMs', opts.cancelBudgetMs, DEFAULT_CANCEL_BUDGET_MS)
      const left = Math.max(0, budget - (main.durationMs - main.cancelledAtMs))
      budgetKillAt = s => sleep(left, s.signal).then(() => (s.signal.aborted ? new Promise(() => undefined) : undefined))
    }
    const pc = opts.postControls ?? {}
    const postOpts: RunHookOptions = {
      ...opts,
      hook: 'post',
      state: opts.postState ?? main.state
    }
    delete postOpts.cancelAt
    delete postOpts.killAt
    delete postOpts.timeoutMs
    if (pc.cancelAt) postOpts.cancelAt = pc.cancelAt
    if (pc.killAt) postOpts.killAt = pc.killAt
    const postTimeout = pc.timeoutMs ?? opts.timeoutMs
    if (postTimeout !== undefined) postOpts.timeoutMs = postTimeout
    const postCtx: HookRunContext = {
      manifest,
      hook: 'post',
      runnerTemp: temp.runnerTemp,
      home: temp.home,
      extraPath: [...main.pathFile].reverse(),
      extraEnv: main.envFile
    }
    if (budgetKillAt) postCtx.budgetKillAt = budgetKillAt
    const post = await runHookIn(postOpts, postCtx)
    return { main, post, postSkippedReason: null, jobStatus }
  } finally {
    await temp.cleanup()
  }
}
