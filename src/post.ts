import * as core from '@actions/core'
import { runContextFromEnv } from './context.js'
import { messageOf } from './errors.js'
import { runPost } from './finalize.js'
import { runnerState } from './state.js'

runPost(name => core.getInput(name), runContextFromEnv(), runnerState).catch((error: unknown) => {
  core.setFailed(messageOf(error))
})
