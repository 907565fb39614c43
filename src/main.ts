import * as core from '@actions/core'
import { runBackup } from './backup.js'
import { abortOnRunnerSignals } from './cancellation.js'
import { runContextFromEnv } from './context.js'
import { messageOf } from './errors.js'
import { runnerState } from './state.js'

const signal = abortOnRunnerSignals(runnerState)
runBackup(name => core.getInput(name), runContextFromEnv(), runnerState, signal).catch((error: unknown) => {
  core.setFailed(messageOf(error))
})
