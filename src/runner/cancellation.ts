import * as core from '@actions/core'
import { CancelledError } from '../errors.js'
import type { StateStore } from './state.js'

/**
 * The runner cancels a step with SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after
 * that. We stop work at the first signal and give the cleanup (abort the upload, mark the row)
 * until HARD_EXIT_MS; whatever is unfinished then is left to post, which has the saved state.
 */
const HARD_EXIT_MS = 6_500

export function abortOnRunnerSignals(state: StateStore): AbortSignal {
  const controller = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      core.warning(`Received ${signal} again; exiting now and leaving the rest to the post step.`)
      process.exit(1)
    }
    state.save({ interruptedBy: signal })
    core.warning(`Received ${signal}: stopping the backup, aborting the upload and recording the outcome.`)
    controller.abort(new CancelledError(signal))
    setTimeout(() => {
      core.warning('Cleanup did not finish in time; the post step will finalize the row from the saved state.')
      process.exit(1)
    }, HARD_EXIT_MS).unref()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return controller.signal
}

/** For the restore, which has no post step: stop at the first signal, and let the cleanup (remove what was written) run until HARD_EXIT_MS. */
export function abortOnSignals(stopping: string): AbortSignal {
  const controller = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(1)
    core.warning(`Received ${signal}: ${stopping}`)
    controller.abort(new CancelledError(signal))
    setTimeout(() => process.exit(1), HARD_EXIT_MS).unref()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return controller.signal
}
