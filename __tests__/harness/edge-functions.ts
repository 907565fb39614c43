// An edge function started by a test with variables of its own (a secret missing, a key state),
// called directly on its port, and stopped again whatever the test does.
import { PassThrough } from 'node:stream'
import { startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'

export async function withFunction<T>(name: string, env: FunctionEnv, use: (url: string) => Promise<T>): Promise<T> {
  const instance = await startFunction(name, env, new PassThrough().resume())
  try {
    return await use(`http://127.0.0.1:${instance.port}/${name}`)
  } finally {
    await instance.stop()
  }
}
