// An edge function started by a test with variables of its own (a secret missing, a key state),
// called directly on its port, and stopped again whatever the test does.
import { PassThrough } from 'node:stream'
import { startFunction, type FunctionEnv } from '../../scripts/test-services/functions.js'
import type { ServicesEnv } from './services.js'

export async function withFunction<T>(name: string, env: FunctionEnv, use: (url: string) => Promise<T>): Promise<T> {
  const instance = await startFunction(name, env, new PassThrough().resume())
  try {
    return await use(`http://127.0.0.1:${instance.port}/${name}`)
  } finally {
    await instance.stop()
  }
}

/** backup-download's store secrets for the lane's S3 server: links to objects of `bucket`, signed with the lane's key. */
export function storeSecrets(env: ServicesEnv, bucket: string): FunctionEnv {
  return {
    BACKUP_S3_BUCKET: bucket,
    BACKUP_S3_REGION: env.S3_REGION,
    BACKUP_S3_ENDPOINT: env.S3_ENDPOINT,
    BACKUP_S3_FORCE_PATH_STYLE: 'true',
    BACKUP_S3_ACCESS_KEY_ID: env.S3_ACCESS_KEY_ID,
    BACKUP_S3_SECRET_ACCESS_KEY: env.S3_SECRET_ACCESS_KEY
  }
}
