import * as core from '@actions/core'
import { runContextFromEnv } from './context.js'
import { runPost } from './finalize.js'
import { runnerState } from './state.js'
import { failStep } from './summary.js'

runPost(name => core.getInput(name), runContextFromEnv(), runnerState).catch((error: unknown) =>
  failStep('Backup row not finalized', error)
)
