import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { inputLines } from '../runner/inputs.js'
import { decodeBech32, encodeBech32 } from './bech32.js'

/**
 * age's native keys: X25519 recipients (`age1…`, public: they go in the workflow) and identities
 * (`AGE-SECRET-KEY-1…`, secret), and the passphrase that stands for both in scrypt mode.
 */

const RECIPIENT_PREFIX = 'age'
const IDENTITY_PREFIX = 'age-secret-key-'
/** DER wrappers of a raw X25519 key (RFC 8410), the form node:crypto takes it in. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex')

export interface X25519Recipient {
  /** The 32-byte public key. */
  publicKey: Buffer
  /** As the user wrote it, for the log. */
  text: string
}

export interface X25519Identity {
  secret: KeyObject
  /** The identity's own public key: part of the wrap key's salt. */
  publicKey: Buffer
  /** Its recipient (`age1…`), which is public: to say which one opened the object. */
  recipient: string
}

/** What encrypts: recipients, or one passphrase (scrypt). */
export type Sealing = { kind: 'recipients'; recipients: X25519Recipient[] } | { kind: 'passphrase'; passphrase: string }

/** What decrypts: identities, a passphrase, or both (each is tried against the stanzas it can open). */
export interface Opening {
  identities: X25519Identity[]
  passphrase: string | undefined
}

/**
 * The recipients the README and the examples show. Copied as they are, they would make backups that
 * nobody can decrypt, found out only on the day of the restore.
 */
const DOCUMENTED_RECIPIENTS = new Set([
  'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
  'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg'
])

/** The recipient, or a sentence saying why the text is not one the action can encrypt to. */
export function parseRecipient(text: string): X25519Recipient | string {
  if (DOCUMENTED_RECIPIENTS.has(text)) {
    return `'${text}' is the example recipient of the documentation, whose identity you do not hold: backups encrypted to it could never be restored. Run \`age-keygen -o key.txt\` and pass the 'Public key: age1…' it prints.`
  }
  if (/^ssh-(ed25519|rsa) /.test(text)) {
    return `'${shortened(text)}' is an SSH public key; the action encrypts to age X25519 recipients only. Make one with \`age-keygen -o key.txt\` and pass the 'Public key: age1…' it prints.`
  }
  if (/^AGE-SECRET-KEY-/i.test(text)) {
    return 'holds an age identity (AGE-SECRET-KEY-1…), which is secret: never put it in a workflow. Pass its public key (age1…, which `age-keygen -y key.txt` prints) instead, and rotate the identity, since the workflow log may have shown it.'
  }
  const decoded = decodeBech32(text)
  if (!decoded || decoded.prefix !== RECIPIENT_PREFIX || decoded.data.length !== 32 || text !== text.toLowerCase()) {
    const plugin = /^age1[a-z0-9]+1/.test(text) && decoded?.prefix !== RECIPIENT_PREFIX
    return plugin
      ? `'${shortened(text)}' is a recipient of an age plugin (or a post-quantum one); the action encrypts to X25519 recipients (age1 and 58 characters) only.`
      : `'${shortened(text)}' is not an age recipient: one is age1 followed by 58 letters and digits, as \`age-keygen\` prints after 'Public key:'.`
  }
  return { publicKey: decoded.data, text }
}

/**
 * What to mask of an identity input: the whole text, and each line on its own, since the runner
 * masks a multi-line secret only where it appears whole.
 */
export function identitySecrets(text: string): string[] {
  return [text, ...inputLines(text)]
}

/** Every identity in the text of an identity file (`#` comments and blank lines skipped), or why one line is not one. */
export function parseIdentities(text: string): X25519Identity[] | string {
  const identities: X25519Identity[] = []
  const lines = inputLines(text)
  for (const [index, line] of lines.entries()) {
    const decoded = decodeBech32(line)
    if (!decoded || decoded.prefix !== IDENTITY_PREFIX || decoded.data.length !== 32) {
      // The line is secret: it is described, never echoed.
      return line.startsWith('age1')
        ? `line ${index + 1} is a recipient (a public key, age1…); decrypting needs its identity, the AGE-SECRET-KEY-1… line of the key file.`
        : `line ${index + 1} is not an age identity: each line must be AGE-SECRET-KEY-1 followed by 58 letters and digits, as in the file \`age-keygen\` wrote (comments starting with # are allowed).`
    }
    identities.push(identityFrom(decoded.data))
  }
  if (identities.length === 0)
    return 'holds no identity: pass the contents of the key file `age-keygen` wrote (its AGE-SECRET-KEY-1… line).'
  return identities
}

export function identityFrom(secretBytes: Buffer): X25519Identity {
  const secret = privateKey(secretBytes)
  const publicKey = rawPublicKey(createPublicKey(secret))
  return { secret, publicKey, recipient: encodeBech32(RECIPIENT_PREFIX, publicKey) }
}

/** A new identity's text and its recipient, as age-keygen makes them: for tests and examples. */
export function generateIdentity(): { identity: string; recipient: string } {
  const pair = generateKeyPairSync('x25519')
  const jwk = pair.privateKey.export({ format: 'jwk' })
  const secretBytes = Buffer.from(jwk.d ?? '', 'base64url')
  return {
    identity: encodeBech32(IDENTITY_PREFIX, secretBytes).toUpperCase(),
    recipient: encodeBech32(RECIPIENT_PREFIX, rawPublicKey(pair.publicKey))
  }
}

/** X25519(secret, point). Undefined for a point of small order, which gives the all-zero secret age refuses. */
export function x25519(secret: KeyObject, point: Buffer): Buffer | undefined {
  try {
    const shared = diffieHellman({
      privateKey: secret,
      publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519, point]), format: 'der', type: 'spki' })
    })
    return shared.every(byte => byte === 0) ? undefined : shared
  } catch {
    return undefined
  }
}

export function ephemeralKey(): { secret: KeyObject; share: Buffer } {
  const pair = generateKeyPairSync('x25519')
  return { secret: pair.privateKey, share: rawPublicKey(pair.publicKey) }
}

function privateKey(secretBytes: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secretBytes]), format: 'der', type: 'pkcs8' })
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length)
}

function shortened(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}
