// The age v1 header and STREAM chunks: what sealHeader writes opens with the right identity or
// passphrase, headers written here from the spec open too, every damaged or misused header is
// refused with a sentence, and each chunk is bound to its index and to the last-chunk flag.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scryptSync
} from 'node:crypto'
import { describe, it } from 'node:test'
import {
  AGE_MAGIC,
  CHUNK_SIZE,
  isAgeEncrypted,
  openHeader,
  PayloadCipher,
  sealHeader,
  SEALED_CHUNK_SIZE,
  type SealedPrefix
} from '../../../src/crypto/age.js'
import { generateIdentity, parseIdentities, parseRecipient, type Opening, type X25519Identity } from '../../../src/crypto/keys.js'
import { DecryptionError } from '../../../src/errors.js'
import { ageDecrypt, ageEncrypt, ageKeygen } from '../../harness/age.js'

const WHAT = 'backups/2024/05/01/backup.zip.age'
/** scrypt's work factor in these tests: 2^10 takes a millisecond, where age's 18 takes a second. */
const FAST = 10
const PASSPHRASE = 'correct horse battery staple'

interface Key {
  identity: X25519Identity
  recipient: string
}

function newKey(): Key {
  const { identity, recipient } = generateIdentity()
  const parsed = parseIdentities(identity)
  assert.ok(typeof parsed !== 'string', parsed as string)
  return { identity: parsed[0] as X25519Identity, recipient }
}

async function sealedTo(...keys: Key[]): Promise<SealedPrefix> {
  const recipients = keys.map(({ recipient }) => {
    const parsed = parseRecipient(recipient)
    assert.ok(typeof parsed !== 'string', parsed as string)
    return parsed
  })
  return sealHeader({ kind: 'recipients', recipients })
}

const withIdentities = (...keys: Key[]): Opening => ({ identities: keys.map(key => key.identity), passphrase: undefined })
const withPassphrase = (passphrase: string, ...keys: Key[]): Opening => ({ identities: keys.map(key => key.identity), passphrase })

/** The message of the DecryptionError openHeader throws. */
async function refusalOf(bytes: Buffer, opening: Opening): Promise<string> {
  try {
    const opened = await openHeader(bytes, opening, WHAT)
    assert.fail(`expected the header to be refused, got ${opened ? `it opened by ${opened.openedBy}` : 'undefined (cut short)'}`)
  } catch (error) {
    assert.ok(error instanceof DecryptionError, `expected a DecryptionError, got ${String(error)}`)
    assert.ok(error.message.includes(WHAT), `the message names the object: ${error.message}`)
    return error.message
  }
}

// The age spec's pieces, written here again from https://age-encryption.org/v1 (not taken from
// src/), so headers can be made with any stanzas and still carry a valid MAC.
const hkdf = (ikm: Buffer, salt: Buffer, info: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))
const b64 = (bytes: Buffer): string => bytes.toString('base64').replace(/=+$/, '')

function wrapFileKey(wrapKey: Buffer, fileKey: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', wrapKey, Buffer.alloc(12), { authTagLength: 16 })
  return Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()])
}

function stanzaText(args: string[], body: Buffer): string {
  const text = b64(body)
  const lines: string[] = []
  // Lines of 64 columns; the last is shorter, so a body that fills its last line gets an empty one.
  for (let at = 0; at <= text.length; at += 64) lines.push(text.slice(at, at + 64))
  return `-> ${args.join(' ')}\n${lines.join('\n')}\n`
}

function x25519Stanza(fileKey: Buffer, recipient: Buffer): string {
  const pair = generateKeyPairSync('x25519')
  const share = Buffer.from(pair.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url')
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: recipient.toString('base64url') }, format: 'jwk' })
  const shared = diffieHellman({ privateKey: pair.privateKey, publicKey })
  return stanzaText(
    ['X25519', b64(share)],
    wrapFileKey(hkdf(shared, Buffer.concat([share, recipient]), 'age-encryption.org/v1/X25519'), fileKey)
  )
}

function scryptStanza(fileKey: Buffer, passphrase: string, workFactor: number): string {
  const salt = randomBytes(16)
  const wrapKey = scryptSync(passphrase, Buffer.concat([Buffer.from('age-encryption.org/v1/scrypt'), salt]), 32, {
    N: 2 ** workFactor,
    r: 8,
    p: 1
  })
  return stanzaText(['scrypt', b64(salt), String(workFactor)], wrapFileKey(wrapKey, fileKey))
}

/** A header with these stanzas, its MAC made with the file key, and the nonce; and the payload key it stands for. */
function headerByHand(fileKey: Buffer, stanzas: string[], versionLine = 'age-encryption.org/v1'): { bytes: Buffer; payloadKey: Buffer } {
  const unsigned = `${versionLine}\n${stanzas.join('')}---`
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(unsigned)
    .digest()
  const nonce = randomBytes(16)
  return { bytes: Buffer.concat([Buffer.from(`${unsigned} ${b64(mac)}\n`, 'latin1'), nonce]), payloadKey: hkdf(fileKey, nonce, 'payload') }
}

/** The header's text (up to the MAC line's newline) and its nonce, to edit one and put them back. */
function split(prefix: Buffer): { text: string; nonce: Buffer } {
  return { text: prefix.subarray(0, prefix.length - 16).toString('latin1'), nonce: prefix.subarray(prefix.length - 16) }
}
const joined = (text: string, nonce: Buffer): Buffer => Buffer.concat([Buffer.from(text, 'latin1'), nonce])

/** The base64 text with one byte of what it encodes flipped, still canonical. */
function flippedBase64(text: string, byte = 0): string {
  const bytes = Buffer.from(text, 'base64')
  bytes[byte] = (bytes[byte] ?? 0) ^ 0x01
  return b64(bytes)
}

describe('age header', () => {
  it('sealed to one recipient, opens with its identity, and gives the payload key and start', async () => {
    const alice = newKey()
    const sealed = await sealedTo(alice)
    const { text } = split(sealed.prefix)
    assert.ok(isAgeEncrypted(sealed.prefix))
    assert.ok(sealed.prefix.subarray(0, AGE_MAGIC.length).equals(Buffer.from('age-encryption.org/v1\n')))
    // The version line, one stanza (its line and the 43 columns of a wrapped file key), the MAC line.
    assert.match(text, /^age-encryption\.org\/v1\n-> X25519 [A-Za-z0-9+/]{43}\n[A-Za-z0-9+/]{43}\n--- [A-Za-z0-9+/]{43}\n$/)
    const opened = await openHeader(sealed.prefix, withIdentities(alice), WHAT)
    assert.ok(opened)
    assert.equal(opened.payloadStart, sealed.prefix.length)
    assert.ok(opened.payloadKey.equals(sealed.payloadKey))
    assert.equal(opened.openedBy, `the identity of ${alice.recipient}`)
  })

  it('sealed to three recipients, opens with any one of their identities', async () => {
    const keys = [newKey(), newKey(), newKey()]
    const sealed = await sealedTo(...keys)
    assert.equal(split(sealed.prefix).text.match(/^-> X25519 /gm)?.length, 3)
    for (const key of keys) {
      const opened = await openHeader(sealed.prefix, withIdentities(newKey(), key), WHAT)
      assert.ok(opened)
      assert.ok(opened.payloadKey.equals(sealed.payloadKey))
      assert.equal(opened.openedBy, `the identity of ${key.recipient}`)
    }
  })

  it('sealed with a passphrase, opens with it, at the work factor the stanza names', async () => {
    const sealed = await sealHeader({ kind: 'passphrase', passphrase: PASSPHRASE }, FAST)
    assert.match(split(sealed.prefix).text, /^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n[A-Za-z0-9+/]{43}\n--- /)
    for (const opening of [withPassphrase(PASSPHRASE), withPassphrase(PASSPHRASE, newKey())]) {
      const opened = await openHeader(sealed.prefix, opening, WHAT)
      assert.ok(opened)
      assert.ok(opened.payloadKey.equals(sealed.payloadKey))
      assert.equal(opened.openedBy, 'the passphrase')
    }
  })

  it('makes a new file key and nonce each time', async () => {
    const alice = newKey()
    const [one, two] = [await sealedTo(alice), await sealedTo(alice)]
    assert.ok(!one.payloadKey.equals(two.payloadKey))
    assert.ok(!split(one.prefix).nonce.equals(split(two.prefix).nonce))
  })

  it('opens a header written from the spec, ignoring stanzas of kinds it does not know', async () => {
    const alice = newKey()
    const fileKey = randomBytes(16)
    // age adds such "grease" stanzas; a 48-byte body fills its 64-column line and is followed by an empty one.
    const grease = stanzaText(['grease-x', 'a!b', '~'], randomBytes(48))
    assert.match(grease, /\n[A-Za-z0-9+/]{64}\n\n$/)
    const header = headerByHand(fileKey, [grease, x25519Stanza(fileKey, alice.identity.publicKey), stanzaText(['other'], Buffer.alloc(0))])
    const opened = await openHeader(header.bytes, withIdentities(alice), WHAT)
    assert.ok(opened)
    assert.ok(opened.payloadKey.equals(header.payloadKey))
    assert.equal(opened.payloadStart, header.bytes.length)

    const byPassphrase = headerByHand(fileKey, [scryptStanza(fileKey, PASSPHRASE, FAST)])
    assert.ok((await openHeader(byPassphrase.bytes, withPassphrase(PASSPHRASE), WHAT))?.payloadKey.equals(byPassphrase.payloadKey))
  })

  it('returns undefined for every prefix cut short after the version line, and opens once the nonce is whole', async () => {
    const keys = [newKey(), newKey(), newKey()]
    const sealed = await sealedTo(...keys)
    const opening = withIdentities(keys[2] as Key)
    for (let length = AGE_MAGIC.length; length < sealed.prefix.length; length++) {
      assert.equal(await openHeader(sealed.prefix.subarray(0, length), opening, WHAT), undefined, `cut at ${length}`)
    }
    // With the payload after it, the header is read to the same place.
    const withPayload = Buffer.concat([sealed.prefix, randomBytes(SEALED_CHUNK_SIZE)])
    assert.equal((await openHeader(withPayload, opening, WHAT))?.payloadStart, sealed.prefix.length)
  })

  // A version line cut short is not yet a wrong one: the caller reads more.
  it('returns undefined for a prefix cut inside the version line', async () => {
    const sealed = await sealedTo(newKey())
    for (let length = 0; length < AGE_MAGIC.length; length++) {
      assert.equal(await openHeader(sealed.prefix.subarray(0, length), withIdentities(newKey()), WHAT), undefined, `cut at ${length}`)
    }
  })
})

describe('age header refusals', () => {
  it('a wrong identity: names the identity tried, and that nothing was restored', async () => {
    const [alice, mallory] = [newKey(), newKey()]
    const message = await refusalOf((await sealedTo(alice)).prefix, withIdentities(mallory))
    assert.match(message, /None of the 1 identity in 'decrypt-identity'/)
    assert.ok(message.includes(mallory.recipient), message)
    assert.ok(!message.includes(alice.recipient), message)
    assert.match(message, /it is encrypted to 1 X25519 recipient\. Pass the identity of a recipient/)
    assert.match(message, /nothing was restored/)
  })

  it('a wrong passphrase, without repeating it', async () => {
    const sealed = await sealHeader({ kind: 'passphrase', passphrase: PASSPHRASE }, FAST)
    const message = await refusalOf(sealed.prefix, withPassphrase('incorrect horse battery staple'))
    assert.match(message, /'decrypt-passphrase' does not open/)
    assert.match(message, /nothing was restored/)
    assert.doesNotMatch(message, /horse/)
  })

  it('a passphrase given for a file sealed to recipients only', async () => {
    const message = await refusalOf((await sealedTo(newKey(), newKey())).prefix, withPassphrase(PASSPHRASE))
    assert.match(message, /is encrypted to 2 X25519 recipients, not with a passphrase/)
    assert.match(message, /'decrypt-identity'; nothing was restored/)
  })

  it('an identity given for a file sealed with a passphrase', async () => {
    const sealed = await sealHeader({ kind: 'passphrase', passphrase: PASSPHRASE }, FAST)
    assert.match(await refusalOf(sealed.prefix, withIdentities(newKey())), /is encrypted with a passphrase: set 'decrypt-passphrase'/)
  })

  it('a scrypt stanza beside an X25519 one, which age forbids, even with a valid MAC', async () => {
    const alice = newKey()
    const fileKey = randomBytes(16)
    for (const stanzas of [
      [x25519Stanza(fileKey, alice.identity.publicKey), scryptStanza(fileKey, PASSPHRASE, FAST)],
      [scryptStanza(fileKey, PASSPHRASE, FAST), x25519Stanza(fileKey, alice.identity.publicKey)]
    ]) {
      const { bytes } = headerByHand(fileKey, stanzas)
      assert.match(await refusalOf(bytes, withPassphrase(PASSPHRASE, alice)), /a passphrase stanza beside others, which age forbids/)
    }
  })

  it('a work factor of 23, before spending its 8 GiB', async () => {
    const fileKey = randomBytes(16)
    // The body is never unwrapped: the work factor is refused first.
    const { bytes } = headerByHand(fileKey, [stanzaText(['scrypt', b64(randomBytes(16)), '23'], randomBytes(32))])
    assert.match(await refusalOf(bytes, withPassphrase(PASSPHRASE)), /asks for scrypt work factor 23, over age's limit of 22/)
  })

  it('a malformed scrypt stanza: work factor with a leading zero, a short salt, a missing argument', async () => {
    const fileKey = randomBytes(16)
    for (const args of [
      ['scrypt', b64(randomBytes(16)), '010'],
      ['scrypt', b64(randomBytes(15)), '10'],
      ['scrypt', b64(randomBytes(16))]
    ]) {
      const { bytes } = headerByHand(fileKey, [stanzaText(args, randomBytes(32))])
      assert.match(await refusalOf(bytes, withPassphrase(PASSPHRASE)), /malformed scrypt stanza/, args.join(' '))
    }
  })

  it('non-canonical base64 in a stanza body: padding bits set, or = padding', async () => {
    const alice = newKey()
    const { text, nonce } = split((await sealedTo(alice)).prefix)
    const lines = text.split('\n')
    const body = lines[2] as string
    assert.equal(body.length, 43)
    // The last character holds 4 bits of the key and 2 of padding; its lowest bit is padding.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const last = alphabet[alphabet.indexOf(body.at(-1) as string) ^ 1] as string
    assert.ok(Buffer.from(`${body.slice(0, -1)}${last}`, 'base64').equals(Buffer.from(body, 'base64')), 'decodes to the same bytes')
    for (const bad of [`${body.slice(0, -1)}${last}`, `${body}=`, `${body.slice(0, 20)}\u00e9${body.slice(21)}`]) {
      const damaged = joined([lines[0], lines[1], bad, ...lines.slice(3)].join('\n'), nonce)
      assert.match(await refusalOf(damaged, withIdentities(alice)), /malformed \(a stanza body\)/, bad)
    }
  })

  it('a body line longer than 64 columns, or a full line with no end, runs into the MAC line', async () => {
    const fileKey = randomBytes(16)
    const alice = newKey()
    const stanza = x25519Stanza(fileKey, alice.identity.publicKey)
    const long = stanza.replace(/\n([A-Za-z0-9+/]{43})\n$/, (_, body: string) => `\n${body}${b64(randomBytes(18))}\n`)
    assert.match(long, /\n[A-Za-z0-9+/]{67}\n$/)
    const full = `-> grease\n${b64(randomBytes(48))}\n`
    for (const stanzas of [[long], [stanza, full]]) {
      assert.match(await refusalOf(headerByHand(fileKey, stanzas).bytes, withIdentities(alice)), /malformed \(a stanza body\)/)
    }
  })

  it('a flipped byte in the MAC', async () => {
    const alice = newKey()
    const { text, nonce } = split((await sealedTo(alice)).prefix)
    const damaged = text.replace(/^--- (\S+)\n$/m, (_, mac: string) => `--- ${flippedBase64(mac, 31)}\n`)
    assert.notEqual(damaged, text)
    assert.match(await refusalOf(joined(damaged, nonce), withIdentities(alice)), /fails its MAC: the header was altered or damaged/)
  })

  it('a flipped byte in a stanza argument (the ephemeral share) or in its body', async () => {
    const alice = newKey()
    const { text, nonce } = split((await sealedTo(alice)).prefix)
    const [version, stanzaLine, body, ...rest] = text.split('\n')
    const share = (stanzaLine as string).slice('-> X25519 '.length)
    for (const byte of [0, 17, 30]) {
      const damaged = joined([version, `-> X25519 ${flippedBase64(share, byte)}`, body, ...rest].join('\n'), nonce)
      // Another share gives another wrap key: the file key does not unwrap (or, by chance of a small-order point, is refused as such).
      assert.match(await refusalOf(damaged, withIdentities(alice)), /None of the 1 identity|invalid share/)
    }
    const damagedBody = joined([version, stanzaLine, flippedBase64(body as string, 5), ...rest].join('\n'), nonce)
    assert.match(await refusalOf(damagedBody, withIdentities(alice)), /None of the 1 identity/)
  })

  it('a malformed X25519 stanza: a short share, an extra argument, a short body', async () => {
    const alice = newKey()
    const fileKey = randomBytes(16)
    const good = x25519Stanza(fileKey, alice.identity.publicKey)
    const share = /^-> X25519 (\S+)\n/.exec(good)?.[1] as string
    for (const stanza of [
      good.replace(share, b64(randomBytes(31))),
      good.replace(share, `${share} extra`),
      stanzaText(['X25519', share], randomBytes(31))
    ]) {
      assert.match(await refusalOf(headerByHand(fileKey, [stanza]).bytes, withIdentities(alice)), /malformed X25519 stanza/)
    }
  })

  it('a stanza added after sealing (a recipient slipped in) fails the MAC', async () => {
    const [alice, mallory] = [newKey(), newKey()]
    const { text, nonce } = split((await sealedTo(alice)).prefix)
    const added = text.replace('\n--- ', `\n${x25519Stanza(randomBytes(16), mallory.identity.publicKey)}--- `)
    assert.match(await refusalOf(joined(added, nonce), withIdentities(alice)), /fails its MAC/)
  })

  it('a missing or other version line', async () => {
    const alice = newKey()
    const { text, nonce } = split((await sealedTo(alice)).prefix)
    const body = text.slice(text.indexOf('\n') + 1)
    for (const damaged of [body, `age-encryption.org/v2\n${body}`, `\n${body}`, `AGE-ENCRYPTION.ORG/V1\n${body}`]) {
      assert.match(await refusalOf(joined(damaged, nonce), withIdentities(alice)), /its first line is not age-encryption\.org\/v1/)
    }
  })

  it('no stanza, a short MAC, a line that is neither stanza nor MAC, an empty argument', async () => {
    const alice = newKey()
    const fileKey = randomBytes(16)
    const stanza = x25519Stanza(fileKey, alice.identity.publicKey)
    const cases: [Buffer, RegExp][] = [
      [headerByHand(fileKey, []).bytes, /\(no stanza\)/],
      [Buffer.concat([Buffer.from(`age-encryption.org/v1\n${stanza}--- ${b64(randomBytes(31))}\n`), randomBytes(16)]), /\(the MAC line\)/],
      [Buffer.concat([Buffer.from(`age-encryption.org/v1\n${stanza}---\n`), randomBytes(16)]), /starts neither a stanza nor the MAC/],
      [headerByHand(fileKey, [stanza, 'what is this\n']).bytes, /starts neither a stanza nor the MAC/],
      [headerByHand(fileKey, [stanza.replace('-> X25519 ', '-> X25519  ')]).bytes, /\(a stanza argument\)/]
    ]
    for (const [bytes, message] of cases) assert.match(await refusalOf(bytes, withIdentities(alice)), message)
  })

  it('a header line over 1 MiB, rather than reading on for its end', async () => {
    const bytes = Buffer.concat([AGE_MAGIC, Buffer.from('-> grease\n'), Buffer.alloc(1024 * 1024 + 1, 'A')])
    assert.match(await refusalOf(bytes, withIdentities(newKey())), /a line longer than 1 MiB/)
  })
})

describe('STREAM chunks (PayloadCipher)', () => {
  const key = randomBytes(32)

  /** ChaCha20-Poly1305 as the spec lays out the nonce: the index in 11 bytes, big-endian, then the last flag. */
  function specSealed(index: number, last: boolean, plain: Buffer): Buffer {
    const nonce = Buffer.alloc(12)
    nonce.writeUIntBE(index, 5, 6)
    nonce[11] = last ? 1 : 0
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  }

  function sealed(index: number, last: boolean, plain: Buffer): Buffer {
    const out = Buffer.alloc(plain.length + 16 + 8)
    const written = new PayloadCipher(key).seal(index, last, plain, out, 8)
    assert.equal(written, plain.length + 16)
    assert.ok(out.subarray(0, 8).equals(Buffer.alloc(8)), 'nothing written before `at`')
    return out.subarray(8, 8 + written)
  }

  it('seals as the spec says and opens back, for a full chunk, a short one and the empty last one', () => {
    for (const [index, last, plain] of [
      [0, false, randomBytes(CHUNK_SIZE)],
      [7, true, randomBytes(1000)],
      [0, true, Buffer.alloc(0)],
      [2 ** 40 + 3, false, randomBytes(CHUNK_SIZE)]
    ] as const) {
      const chunk = sealed(index, last, plain)
      assert.ok(chunk.equals(specSealed(index, last, plain)), `chunk ${index}`)
      assert.ok(new PayloadCipher(key).open(index, last, chunk)?.equals(plain), `chunk ${index}`)
    }
  })

  it('refuses a chunk opened at another index, with the other last flag, or under another key', () => {
    const plain = randomBytes(5000)
    const cipher = new PayloadCipher(key)
    const chunk = Buffer.from(sealed(3, false, plain))
    assert.ok(cipher.open(3, false, chunk)?.equals(plain))
    assert.equal(cipher.open(2, false, chunk), undefined)
    assert.equal(cipher.open(4, false, chunk), undefined)
    assert.equal(cipher.open(3, true, chunk), undefined)
    // The index's high bytes count too: 2^32 + 3 is not 3.
    assert.equal(cipher.open(2 ** 32 + 3, false, chunk), undefined)
    assert.equal(new PayloadCipher(randomBytes(32)).open(3, false, chunk), undefined)
    const last = sealed(0, true, plain)
    assert.equal(cipher.open(0, false, last), undefined)
  })

  it('refuses a chunk with any byte flipped, in the ciphertext or the tag', () => {
    const plain = randomBytes(300)
    const chunk = sealed(1, false, plain)
    for (const at of [0, 150, 299, 300, 315]) {
      const damaged = Buffer.from(chunk)
      damaged[at] = (damaged[at] ?? 0) ^ 0x80
      assert.equal(new PayloadCipher(key).open(1, false, damaged), undefined, `byte ${at}`)
    }
  })
  // A chunk shorter than its tag is refused like any other that does not authenticate, not with node's TypeError.
  it('refuses a chunk shorter than its tag', () => {
    for (const length of [0, 1, 15]) assert.equal(new PayloadCipher(key).open(0, true, Buffer.alloc(length)), undefined, `${length} bytes`)
  })
})

const hasAge = ['age', 'age-keygen'].every(tool => spawnSync(tool, ['--version']).status === 0)

describe('the reference age', () => {
  it(
    'opens what sealHeader and PayloadCipher write, and writes what openHeader opens',
    { skip: !hasAge && 'age is not on PATH' },
    async () => {
      const key = await ageKeygen()
      const parsed = parseIdentities(key.identity)
      assert.ok(typeof parsed !== 'string', parsed as string)
      const identity = parsed[0] as X25519Identity
      assert.equal(identity.recipient, key.recipient)
      // Two chunks: a full one, then a short last one.
      const plain = randomBytes(CHUNK_SIZE + 1234)

      const sealed = await sealedTo({ identity, recipient: key.recipient })
      const cipher = new PayloadCipher(sealed.payloadKey)
      const payload = Buffer.alloc(plain.length + 32)
      let used = cipher.seal(0, false, plain.subarray(0, CHUNK_SIZE), payload, 0)
      used += cipher.seal(1, true, plain.subarray(CHUNK_SIZE), payload, used)
      assert.ok((await ageDecrypt(Buffer.concat([sealed.prefix, payload.subarray(0, used)]), key)).equals(plain))

      const written = await ageEncrypt(plain, [key.recipient])
      const opened = await openHeader(written, { identities: [identity], passphrase: undefined }, WHAT)
      assert.ok(opened)
      const reader = new PayloadCipher(opened.payloadKey)
      const first = written.subarray(opened.payloadStart, opened.payloadStart + SEALED_CHUNK_SIZE)
      const second = written.subarray(opened.payloadStart + SEALED_CHUNK_SIZE)
      assert.ok(
        Buffer.concat([reader.open(0, false, first) ?? Buffer.alloc(0), reader.open(1, true, second) ?? Buffer.alloc(0)]).equals(plain)
      )
    }
  )
})
