import * as core from '@actions/core'
import { abortOnSignals } from '../runner/cancellation.js'
import { runContextFromEnv } from '../runner/context.js'
import { relaunchWithMemoryBounds } from '../runner/memory-bounds.js'
import { runRestore } from './restore.js'
import { failStep } from '../runner/summary.js'

relaunchWithMemoryBounds()
const signal = abortOnSignals('stopping the restore and removing what it wrote.')
runRestore(name => core.getInput(name), runContextFromEnv(), signal).catch((error: unknown) => failStep('Restore failed', error))
