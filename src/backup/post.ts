import * as core from '@actions/core'
import { runContextFromEnv } from '../runner/context.js'
import { runPost } from './finalize.js'
import { runnerState } from '../runner/state.js'
import { failStep } from '../runner/summary.js'

runPost(name => core.getInput(name), runContextFromEnv(), runnerState).catch((error: unknown) =>
  failStep('Backup row not finalized', error)
)
