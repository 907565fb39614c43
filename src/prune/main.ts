import * as core from '@actions/core'
import { runContextFromEnv } from '../runner/context.js'
import { messageOf } from '../errors.js'
import { runPrune } from './prune.js'

runPrune(name => core.getInput(name), runContextFromEnv()).catch((error: unknown) => {
  core.setFailed(messageOf(error))
})
