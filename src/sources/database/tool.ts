import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'
import { DatabaseError } from '../../errors.js'

/** After SIGTERM, a tool that has not exited gets SIGKILL this much later. */
const KILL_AFTER_MS = 2_000
/** The end of a tool's stderr kept for the error message. */
const STDERR_TAIL = 4_096

export interface ToolRun {
  /** The tool's stdout in the pieces the pipe gives. */
  stdout: AsyncIterable<Buffer>
  /** Resolves when the tool exited 0; rejects with its stderr otherwise, or with the signal's reason once stopped. */
  exited: Promise<void>
  pid: number
}

/**
 * Runs a Postgres client tool with its output piped, its stdin closed and nothing secret on its
 * command line (the password comes in the environment). A cancel stops it (SIGTERM, then
 * SIGKILL), and `onExit` hears of its end, so the caller can keep the list of tools running.
 */
export function runTool(command: string, args: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal, describe: string): ToolRun {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL)
  })
  const stop = (): void => {
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS).unref()
  }
  signal.addEventListener('abort', stop, { once: true })
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', error => reject(new DatabaseError(`${describe} could not start (${error.message}).`, { cause: error })))
    child.once('close', (code, killedBy) => {
      signal.removeEventListener('abort', stop)
      if (signal.aborted) reject(signal.reason)
      else if (code === 0) resolve()
      else reject(new DatabaseError(`${describe} failed${killedBy ? ` (${killedBy})` : ` (exit ${code})`}: ${lastLines(stderr)}`))
    })
  })
  // Read by whoever iterates stdout; a rejection nobody awaits yet must not crash the process.
  exited.catch(() => {})
  if (child.pid === undefined) throw new DatabaseError(`${describe} could not start.`)
  return { stdout: child.stdout, exited, pid: child.pid }
}

/** What a tool said last, on one line: the reason it failed. */
function lastLines(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map(line => line.trim())
    .filter(Boolean)
  const shown = lines.slice(-3).join(' ')
  return shown === '' ? 'no message' : shown
}
