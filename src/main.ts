import * as core from '@actions/core'
import { runBackup } from './backup.js'
import { abortOnRunnerSignals } from './cancellation.js'
import { runContextFromEnv } from './context.js'
import { relaunchWithMemoryBounds } from './memory-bounds.js'
import { sizeThreadpool } from './parallel.js'
import { runnerState } from './state.js'
import { failStep } from './summary.js'

relaunchWithMemoryBounds()
sizeThreadpool()
const signal = abortOnRunnerSignals(runnerState)
runBackup(name => core.getInput(name), runContextFromEnv(), runnerState, signal).catch((error: unknown) => failStep('Backup failed', error))
