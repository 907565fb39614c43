// The restore's decryption inputs: decrypt-identity takes an age key file as age-keygen writes it,
// decrypt-passphrase stands beside it, and a bad identity is refused without repeating it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateIdentity } from '../../../src/crypto/keys.js'
import { InputError } from '../../../src/errors.js'
import { parseRestoreInputs, secretValues, type InputName } from '../../../src/restore/inputs.js'

const WORKSPACE = '/home/runner/work/app/app'
const RESTORE_OK: Partial<Record<InputName, string>> = {
  's3-key': 'backups/2024/05/01/backup.zip.age',
  path: 'restored',
  bucket: 'my-backups'
}

const reader = (values: Partial<Record<InputName, string>>) => (name: InputName) => values[name] ?? ''

function refusalOf(values: Partial<Record<InputName, string>>): InputError {
  try {
    parseRestoreInputs(reader({ ...RESTORE_OK, ...values }), WORKSPACE, {})
  } catch (error) {
    assert.ok(error instanceof InputError, `expected InputError, got ${String(error)}`)
    return error
  }
  assert.fail('expected the inputs to be refused')
}

describe('decryption inputs', () => {
  it('are undefined when neither is set', () => {
    assert.equal(parseRestoreInputs(reader(RESTORE_OK), WORKSPACE, {}).decryption, undefined)
  })

  it('read the key file age-keygen writes, with CRLF, and a passphrase beside it', () => {
    const [alice, bob] = [generateIdentity(), generateIdentity()]
    const file = `# created: 2024-05-01T10:00:00Z\r\n# public key: ${alice.recipient}\r\n${alice.identity}\r\n\r\n${bob.identity}\r\n`
    const decryption = parseRestoreInputs(
      reader({ ...RESTORE_OK, 'decrypt-identity': file, 'decrypt-passphrase': 'correct horse battery staple' }),
      WORKSPACE,
      {}
    ).decryption
    assert.deepEqual(
      decryption?.identities.map(identity => identity.recipient),
      [alice.recipient, bob.recipient]
    )
    assert.equal(decryption?.passphrase, 'correct horse battery staple')
  })

  it('take a passphrase alone', () => {
    const decryption = parseRestoreInputs(reader({ ...RESTORE_OK, 'decrypt-passphrase': 'short' }), WORKSPACE, {}).decryption
    // Any length: the restore opens what an older or other age wrote; the backup is where length is enforced.
    assert.deepEqual(decryption, { identities: [], passphrase: 'short' })
  })

  it('mask the identity file, each of its identity lines, and the passphrase', () => {
    const { identity } = generateIdentity()
    const secrets = secretValues(
      reader({ ...RESTORE_OK, 'decrypt-identity': `# key\n${identity}\n`, 'decrypt-passphrase': 'correct horse battery staple' })
    )
    for (const secret of [`# key\n${identity}\n`, identity, 'correct horse battery staple']) assert.ok(secrets.includes(secret), secret)
  })

  it('refuse garbage in decrypt-identity, naming it, without repeating the input', () => {
    const garbage = 'this-is-not-a-key-8f3b2c'
    const error = refusalOf({ 'decrypt-identity': garbage })
    assert.deepEqual(
      error.problems.map(problem => problem.input),
      ['decrypt-identity']
    )
    assert.match(error.message, /line 1 is not an age identity/)
    assert.ok(!error.message.includes(garbage), error.message)
    assert.ok(!error.message.includes('8f3b2c'), error.message)
  })

  it('refuse a damaged identity or a recipient in decrypt-identity without repeating it', () => {
    const { identity, recipient } = generateIdentity()
    const damaged = `${identity.slice(0, 30)}${identity.slice(31)}`
    for (const [text, message] of [
      [`# backups\n${damaged}`, /line 1 is not an age identity/],
      [recipient, /line 1 is a recipient/]
    ] as const) {
      const error = refusalOf({ 'decrypt-identity': text })
      assert.deepEqual(
        error.problems.map(problem => problem.input),
        ['decrypt-identity']
      )
      assert.match(error.message, message)
      assert.ok(!error.message.includes(text.slice(-20)), error.message)
    }
  })
})
