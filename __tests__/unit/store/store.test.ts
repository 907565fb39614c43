// Retrying the store: which failures are worth another try, and what the row says when the store
// never confirms an upload that may be complete.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { S3Client } from '@aws-sdk/client-s3'
import { StoreError, VerificationError } from '../../../src/errors.js'
import { confirmObject, isTransientStoreError } from '../../../src/store/s3.js'

const FAST = { budgetMs: 50, initialDelayMs: 1, maxDelayMs: 5 }
const sdkError = (name: string, status?: number, code?: string) =>
  Object.assign(new Error(name), { name, code, $metadata: status === undefined ? {} : { httpStatusCode: status } })
/** A client whose every request fails with `error`, counting the requests. */
const failingClient = (error: Error) => {
  const client = { calls: 0, send: async () => Promise.reject((client.calls++, error)) }
  return client
}

describe('transient store failures', () => {
  for (const [title, error, transient] of [
    ['a 500', sdkError('InternalError', 500), true],
    ['a 503 SlowDown', sdkError('SlowDown', 503), true],
    ['throttling (429)', sdkError('TooManyRequests', 429), true],
    ['a reset connection', sdkError('Error', undefined, 'ECONNRESET'), true],
    ['access denied', sdkError('AccessDenied', 403), false],
    ['a missing bucket', sdkError('NoSuchBucket', 404), false],
    ['an object that does not match', new VerificationError('mismatch'), false],
    ['a key already taken', new StoreError('An object already exists'), false]
  ] as const) {
    it(`${title} is ${transient ? '' : 'not '}retried`, () => {
      assert.equal(isTransientStoreError(error), transient)
      assert.equal(isTransientStoreError(new StoreError('wrapped', { cause: error })), transient)
    })
  }
})

describe('confirming an uploaded object', () => {
  it('a store that never answers: the error says the object was left in the store', async () => {
    const client = failingClient(sdkError('InternalError', 500))
    await assert.rejects(
      confirmObject(client as unknown as S3Client, 'b', 'k.zip', { size: 1, etags: [], crc32s: [] }, FAST),
      /could not confirm the upload of s3:\/\/b\/k\.zip, so it was left in the store as it is/
    )
    assert.ok(client.calls > 1, 'retried')
  })

  it('an object that is not there is not retried', async () => {
    const client = failingClient(sdkError('NotFound', 404))
    await assert.rejects(
      confirmObject(client as unknown as S3Client, 'b', 'k.zip', { size: 1, etags: [], crc32s: [] }, FAST),
      (error: unknown) => error instanceof VerificationError
    )
    assert.equal(client.calls, 1)
  })
})
