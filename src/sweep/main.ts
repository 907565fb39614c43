import * as core from '@actions/core'
import { runContextFromEnv } from '../runner/context.js'
import { messageOf } from '../errors.js'
import { runSweep } from './sweep.js'

runSweep(name => core.getInput(name), runContextFromEnv()).catch((error: unknown) => {
  core.setFailed(messageOf(error))
})
