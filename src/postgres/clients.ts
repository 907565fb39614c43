import { execFile } from 'node:child_process'
import { accessSync, constants, readdirSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { DatabaseError } from '../errors.js'

const run = promisify(execFile)

/** Where Debian and Ubuntu (and GitHub's runners) install each major version's client tools. */
const VERSIONED_ROOT = '/usr/lib/postgresql'
const TOOLS = ['pg_dump', 'pg_dumpall', 'psql'] as const
export type ClientTool = (typeof TOOLS)[number]

/** One installation of the client tools: a directory that has all three, and their version. */
export interface ClientTools {
  directory: string
  /** e.g. 15 for 15.18. */
  major: number
  /** What `pg_dump --version` says, e.g. `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`. */
  versionText: string
  /** e.g. 15.18. */
  version: string
}

export function toolPath(clients: ClientTools, tool: ClientTool): string {
  return path.join(clients.directory, tool)
}

/** Directories that may hold the tools: each version under /usr/lib/postgresql, then PATH's. */
export function candidateDirectories(env: NodeJS.ProcessEnv = process.env): string[] {
  let versioned: string[] = []
  try {
    versioned = readdirSync(VERSIONED_ROOT)
      .filter(name => /^\d+$/.test(name))
      .map(name => path.join(VERSIONED_ROOT, name, 'bin'))
  } catch {
    // No Debian-style installation.
  }
  const onPath = (env.PATH ?? '').split(path.delimiter).filter(Boolean)
  // Of two of one version, the versioned directory wins: Debian's /usr/bin/pg_dump is a wrapper that picks a version itself.
  return [...new Set([...versioned, ...onPath])]
}

/** Every installation found, with its version (from pg_dump --version), newest first. */
export async function findClients(directories: readonly string[] = candidateDirectories()): Promise<ClientTools[]> {
  const found: ClientTools[] = []
  for (const directory of directories) {
    if (!TOOLS.every(tool => isExecutable(path.join(directory, tool)))) continue
    try {
      const { stdout } = await run(path.join(directory, 'pg_dump'), ['--version'], { timeout: 10_000 })
      const version = parseVersion(stdout)
      if (version) found.push({ directory, ...version, versionText: stdout.trim() })
    } catch {
      // Not a working pg_dump: skipped.
    }
  }
  return found.sort((a, b) => compareVersions(b.version, a.version))
}

/** `pg_dump (PostgreSQL) 15.18 (Debian ...)`, `psql (PostgreSQL) 17.2`, `... 18beta1`: major and version. */
export function parseVersion(text: string): { major: number; version: string } | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text)
  if (!match) return undefined
  return { major: Number(match[1]), version: match[2] === undefined ? (match[1] as string) : `${match[1]}.${match[2]}` }
}

/**
 * The tools to dump (or restore) a server of `serverMajor` with: the newest installation, which
 * must be at least the server's major (an older pg_dump refuses a newer server). Undefined when
 * there is none.
 */
export function chooseClients(installed: readonly ClientTools[], serverMajor: number): ClientTools | undefined {
  const newest = installed[0]
  return newest && newest.major >= serverMajor ? newest : undefined
}

/** The commands that install the client of `major` from the PostgreSQL apt repository, as GitHub's Ubuntu runners can run them. */
export function installCommands(major: number, sudo: boolean): string[][] {
  const prefix = sudo ? ['sudo', '-n'] : []
  return [
    [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', 'postgresql-common'],
    [...prefix, '/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh', '-y'],
    [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', `postgresql-client-${major}`]
  ]
}

/** What a user runs before the step to get the client, for the message when the action cannot. */
export function installAdvice(major: number): string {
  return `sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-${major}`
}

/** Where ensureClients looks and whether it may install: the runner's own unless a caller says otherwise. */
export interface ClientSearch {
  /** The directories to search, asked again after an install: candidateDirectories() by default. */
  directories?: () => readonly string[]
  /** Whether apt can install the client: undefined when not, else whether it takes `sudo -n`. */
  installer?: () => Promise<boolean | undefined>
}

/**
 * The newest installed tools if they can dump a server of `serverMajor`; else, on a Linux runner
 * with apt (as root, or with password-less sudo), the client of that major installed from the
 * PostgreSQL apt repository; else a DatabaseError that names the version needed and how to get it.
 */
export async function ensureClients(serverMajor: number, log: (line: string) => void, search: ClientSearch = {}): Promise<ClientTools> {
  const { directories = () => candidateDirectories(), installer = canInstall } = search
  const installed = await findClients(directories())
  const chosen = chooseClients(installed, serverMajor)
  if (chosen) return chosen
  const have = installed[0]
    ? `this runner's newest pg_dump is ${installed[0].version} (${installed[0].directory})`
    : 'this runner has no pg_dump'
  const sudo = await installer()
  if (sudo !== undefined) {
    log(
      `The database runs PostgreSQL ${serverMajor} and ${have}: installing postgresql-client-${serverMajor} from the PostgreSQL apt repository.`
    )
    try {
      for (const [command, ...args] of installCommands(serverMajor, sudo)) await run(command as string, args, { timeout: 300_000 })
      const after = chooseClients(await findClients(directories()), serverMajor)
      if (after) return after
    } catch (error) {
      log(
        `Installing postgresql-client-${serverMajor} failed: ${String((error as { stderr?: string }).stderr ?? error)
          .trim()
          .split('\n')
          .slice(-2)
          .join(' ')}`
      )
    }
  }
  throw new DatabaseError(
    `The database runs PostgreSQL ${serverMajor}, and ${have}: pg_dump must be at least the server's version. Install the client before this step: \`${installAdvice(serverMajor)}\` (on GitHub's Ubuntu runners), or use a runner image that has PostgreSQL ${serverMajor}'s client tools.`
  )
}

/** Whether apt can be used: undefined when not, else whether it needs `sudo -n`. */
async function canInstall(): Promise<boolean | undefined> {
  if (process.platform !== 'linux' || !isExecutable('/usr/bin/apt-get')) return undefined
  if (process.getuid?.() === 0) return false
  try {
    await run('sudo', ['-n', 'true'], { timeout: 10_000 })
    return true
  } catch {
    return undefined
  }
}

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number)
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number)
  return aMajor - bMajor || aMinor - bMinor
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}
