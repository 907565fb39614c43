import * as core from '@actions/core'
import { runBackup } from './backup.js'
import { abortOnRunnerSignals } from '../runner/cancellation.js'
import { runContextFromEnv } from '../runner/context.js'
import { relaunchWithMemoryBounds } from '../runner/memory-bounds.js'
import { sizeThreadpool } from '../threads/parallel.js'
import { runnerState } from '../runner/state.js'
import { failStep } from '../runner/summary.js'

relaunchWithMemoryBounds()
sizeThreadpool()
const signal = abortOnRunnerSignals(runnerState)
runBackup(name => core.getInput(name), runContextFromEnv(), runnerState, signal).catch((error: unknown) => failStep('Backup failed', error))
