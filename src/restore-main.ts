import * as core from '@actions/core'
import { abortOnSignals } from './cancellation.js'
import { runContextFromEnv } from './context.js'
import { relaunchWithMemoryBounds } from './memory-bounds.js'
import { runRestore } from './restore.js'
import { failStep } from './summary.js'

relaunchWithMemoryBounds()
const signal = abortOnSignals('stopping the restore and removing what it wrote.')
runRestore(name => core.getInput(name), runContextFromEnv(), signal).catch((error: unknown) => failStep('Restore failed', error))
