// age's native keys: what `encrypt-to` and `decrypt-identity` accept, what they refuse with a
// sentence saying what to pass instead, and that no refusal repeats a secret line.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeBech32, encodeBech32 } from '../../../src/crypto/bech32.js'
import {
  generateIdentity,
  identityFrom,
  identitySecrets,
  parseIdentities,
  parseRecipient,
  x25519,
  type X25519Identity,
  type X25519Recipient
} from '../../../src/crypto/keys.js'

function recipientOf(text: string): X25519Recipient {
  const recipient = parseRecipient(text)
  assert.ok(typeof recipient !== 'string', recipient as string)
  return recipient
}

function identitiesOf(text: string): X25519Identity[] {
  const identities = parseIdentities(text)
  assert.ok(typeof identities !== 'string', identities as string)
  return identities
}

function refusalOf(parsed: X25519Identity[] | X25519Recipient | string): string {
  assert.equal(typeof parsed, 'string', 'expected a refusal')
  return parsed as string
}

describe('generateIdentity and identityFrom', () => {
  it('make an identity that parses back to the recipient printed beside it', () => {
    const { identity, recipient } = generateIdentity()
    assert.match(identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/)
    assert.match(recipient, /^age1[0-9a-z]{58}$/)
    const [parsed, ...rest] = identitiesOf(identity)
    assert.equal(rest.length, 0)
    assert.ok(parsed)
    assert.equal(parsed.recipient, recipient)
    const secretBytes = decodeBech32(identity)?.data
    assert.ok(secretBytes)
    assert.equal(identityFrom(secretBytes).recipient, recipient)
    assert.ok(recipientOf(recipient).publicKey.equals(parsed.publicKey))
  })

  it('make a new identity each time', () => {
    const recipients = new Set(Array.from({ length: 20 }, () => generateIdentity().recipient))
    assert.equal(recipients.size, 20)
  })

  it("derive RFC 7748's public keys and shared secret", () => {
    // RFC 7748 section 6.1: Alice's and Bob's keys, and the secret they share.
    const alice = identityFrom(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'))
    const bob = identityFrom(Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'))
    assert.equal(alice.publicKey.toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    assert.equal(bob.publicKey.toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
    assert.equal(x25519(alice.secret, bob.publicKey)?.toString('hex'), shared)
    assert.equal(x25519(bob.secret, alice.publicKey)?.toString('hex'), shared)
  })

  it('x25519 refuses a point of small order, whose shared secret is all zeros', () => {
    const { secret } = identityFrom(randomBytes(32))
    // u = 0, u = 1 and a point of order 8: a clamped scalar (a multiple of 8) sends each to zero.
    for (const point of ['00', '01', 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800']) {
      assert.equal(x25519(secret, Buffer.from(point.padEnd(64, '0'), 'hex')), undefined, point)
    }
    assert.equal(x25519(secret, identityFrom(randomBytes(32)).publicKey)?.length, 32)
  })
})

describe('parseRecipient', () => {
  it('accepts an age1 recipient and keeps its text for the log', () => {
    const { recipient } = generateIdentity()
    const parsed = recipientOf(recipient)
    assert.equal(parsed.text, recipient)
    assert.equal(parsed.publicKey.length, 32)
  })

  it('refuses the recipients the README and the examples show: copied, they would make backups nobody can restore', () => {
    for (const documented of [
      'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
      'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg'
    ]) {
      assert.match(String(parseRecipient(documented)), /is the example recipient of the documentation.*age-keygen -o key.txt/)
    }
  })

  it('refuses an SSH public key, saying to make an age key instead', () => {
    const ssh = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${randomBytes(32).toString('base64').slice(0, 43)} me@laptop`
    const message = refusalOf(parseRecipient(ssh))
    assert.match(message, /is an SSH public key/)
    assert.match(message, /age-keygen/)
    assert.match(refusalOf(parseRecipient('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ me@laptop')), /SSH public key/)
  })

  it('refuses an identity, saying it is secret, without repeating it', () => {
    const { identity } = generateIdentity()
    for (const text of [identity, identity.toLowerCase()]) {
      const message = refusalOf(parseRecipient(text))
      assert.match(message, /secret/)
      assert.match(message, /age-keygen -y/)
      assert.ok(!message.includes(text.slice('AGE-SECRET-KEY-1'.length, 30)), message)
    }
  })

  it('refuses a plugin recipient, naming plugins', () => {
    const plugin = encodeBech32('age1yubikey', randomBytes(33))
    assert.match(plugin, /^age1yubikey1/)
    assert.ok(decodeBech32(plugin), 'a well-formed Bech32 string')
    assert.match(refusalOf(parseRecipient(plugin)), /plugin/)
  })

  it('refuses a post-quantum (or any other length) age1 key, naming X25519', () => {
    assert.match(refusalOf(parseRecipient(encodeBech32('age', randomBytes(1216)))), /not an age recipient/)
    assert.match(refusalOf(parseRecipient(encodeBech32('age', randomBytes(31)))), /not an age recipient/)
  })

  it('refuses a recipient with a bad checksum', () => {
    const { recipient } = generateIdentity()
    const last = recipient.at(-1) === 'q' ? 'p' : 'q'
    const message = refusalOf(parseRecipient(`${recipient.slice(0, -1)}${last}`))
    assert.match(message, /is not an age recipient/)
    assert.match(message, /age1 followed by 58/)
  })

  it('refuses a recipient in upper case, which age does not accept either', () => {
    const { recipient } = generateIdentity()
    assert.ok(decodeBech32(recipient.toUpperCase()), 'valid Bech32')
    assert.match(refusalOf(parseRecipient(recipient.toUpperCase())), /is not an age recipient/)
  })

  it('refuses text that is no key at all, and shortens a long one', () => {
    assert.match(refusalOf(parseRecipient('alice@example.com')), /'alice@example\.com' is not an age recipient/)
    const message = refusalOf(parseRecipient('x'.repeat(500)))
    assert.ok(!message.includes('x'.repeat(41)), message)
  })
})

describe('parseIdentities', () => {
  it('reads a key file as age-keygen writes it: comments, blank lines, CRLF', () => {
    const one = generateIdentity()
    const two = generateIdentity()
    const file = [
      '# created: 2024-05-01T10:00:00Z',
      `# public key: ${one.recipient}`,
      one.identity,
      '',
      '   ',
      `  # public key: ${two.recipient}`,
      `  ${two.identity}  `,
      ''
    ].join('\r\n')
    assert.deepEqual(
      identitiesOf(file).map(identity => identity.recipient),
      [one.recipient, two.recipient]
    )
  })

  it('refuses a recipient given for an identity, saying which line', () => {
    const { identity, recipient } = generateIdentity()
    const message = refusalOf(parseIdentities(`# key\n${identity}\n${recipient}\n`))
    assert.match(message, /^line 2 is a recipient/)
    assert.match(message, /AGE-SECRET-KEY-1/)
  })

  it('refuses garbage and damaged identities without repeating the line', () => {
    const { identity } = generateIdentity()
    const damaged = `${identity.slice(0, -1)}${identity.at(-1) === 'Q' ? 'P' : 'Q'}`
    const lines = [
      'not a key',
      damaged,
      identity.slice(0, -5),
      `${identity}X`,
      encodeBech32('age-secret-key-', randomBytes(31)).toUpperCase(),
      encodeBech32('age-plugin-yubikey-', randomBytes(32)).toUpperCase(),
      `AGE-SECRET-KEY-1 ${identity.slice(16)}`
    ]
    for (const line of lines) {
      const message = refusalOf(parseIdentities(`${identity}\n${line}`))
      assert.match(message, /^line 2 is not an age identity/)
      assert.ok(!message.includes(line), message)
      // Not even a part of what follows the prefix: a fragment of a key is that much less to guess.
      const secret = line.includes('-1') ? line.slice(line.indexOf('-1') + 2).trim() : line
      for (let at = 0; at + 8 <= secret.length; at++) {
        assert.ok(!message.includes(secret.slice(at, at + 8)), `${message} repeats ${secret.slice(at, at + 8)}`)
      }
    }
  })

  it('refuses a file with no identity, only comments', () => {
    assert.match(refusalOf(parseIdentities('# created: 2024-05-01\n\n# public key: age1...\n')), /holds no identity/)
    assert.match(refusalOf(parseIdentities('')), /holds no identity/)
  })
})

describe('identitySecrets', () => {
  it('returns the whole text and each identity line, trimmed, but not the comments', () => {
    const one = generateIdentity()
    const two = generateIdentity()
    const text = `# created: 2024-05-01\r\n# public key: ${one.recipient}\r\n  ${one.identity}\r\n\r\n${two.identity}\r\n`
    assert.deepEqual(identitySecrets(text), [text, one.identity, two.identity])
  })

  it('masks even a line that is not an identity, since it may be a damaged one', () => {
    assert.deepEqual(identitySecrets('garbage\nAGE-SECRET-KEY-1QQQ'), ['garbage\nAGE-SECRET-KEY-1QQQ', 'garbage', 'AGE-SECRET-KEY-1QQQ'])
  })
})
