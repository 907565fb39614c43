import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { SPOOL_PREFIX } from './source.js'

/**
 * What a main step that was killed mid-dump leaves: pg_dump still running (a killed parent does
 * not stop its children) and the spool on the runner's disk. post ends both, from the state alone.
 * Only a pid whose command line is a Postgres client tool is signalled (pids are reused), and only
 * a directory with the spool's name is removed.
 */
export async function removeDumpLeftovers(pids: string, spoolDirectory: string): Promise<string[]> {
  const done: string[] = []
  for (const pid of pids
    .split(' ')
    .map(Number)
    .filter(pid => Number.isSafeInteger(pid) && pid > 0)) {
    if (!isClientTool(pid)) continue
    try {
      process.kill(pid, 'SIGKILL')
      done.push(`stopped pg_dump (pid ${pid})`)
    } catch {
      // Gone meanwhile.
    }
  }
  if (spoolDirectory && path.basename(spoolDirectory).startsWith(SPOOL_PREFIX)) {
    await rm(spoolDirectory, { recursive: true, force: true })
    done.push(`removed the spool ${spoolDirectory}`)
  }
  return done
}

function isClientTool(pid: number): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\u0000')[0] ?? ''
    return /(^|\/)(pg_dump|pg_dumpall)$/.test(command)
  } catch {
    return false
  }
}
