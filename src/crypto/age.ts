import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { DecryptionError } from '../errors.js'
import { ephemeralKey, x25519, type Opening, type Sealing } from './keys.js'

/**
 * The age file format, v1 (https://age-encryption.org/v1), on node:crypto: a text header whose
 * stanzas each wrap the random file key for one recipient (X25519) or a passphrase (scrypt),
 * closed by an HMAC; then a 16-byte nonce and the payload in 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under its index and a last-chunk flag (the STREAM construction), so chunks
 * can be neither reordered, dropped nor cut off at the end without failing authentication.
 */

const VERSION_LINE = 'age-encryption.org/v1'
/** The first bytes of every age file. */
export const AGE_MAGIC = Buffer.from(`${VERSION_LINE}\n`)
export const CHUNK_SIZE = 64 * 1024
export const TAG_SIZE = 16
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
const NONCE_SIZE = 16
const FILE_KEY_SIZE = 16
const X25519_LABEL = 'age-encryption.org/v1/X25519'
const SCRYPT_LABEL = 'age-encryption.org/v1/scrypt'
/** age's own default: ~1 s and 256 MiB to derive the key. */
export const SCRYPT_WORK_FACTOR = 18
/** age's own limit when decrypting: higher would let an object ask for 8 GiB and minutes of scrypt. */
const MAX_SCRYPT_WORK_FACTOR = 22
/** A header this long is not one the action would read: it is a damaged object, not a key list. */
export const MAX_HEADER_SIZE = 1024 * 1024
const COLUMNS = 64

export function isAgeEncrypted(head: Buffer): boolean {
  return head.length >= AGE_MAGIC.length && head.subarray(0, AGE_MAGIC.length).equals(AGE_MAGIC)
}

/** What precedes the payload (header and nonce), and the key that seals its chunks. */
export interface SealedPrefix {
  prefix: Buffer
  payloadKey: Buffer
}

/** A new file key, wrapped for each recipient (or the passphrase), in a header that ends with the payload's nonce. */
export async function sealHeader(sealing: Sealing, workFactor = SCRYPT_WORK_FACTOR): Promise<SealedPrefix> {
  if (sealing.kind === 'recipients' && sealing.recipients.length === 0) throw new Error('An age file needs at least one recipient.')
  const fileKey = randomBytes(FILE_KEY_SIZE)
  const stanzas =
    sealing.kind === 'passphrase'
      ? [await scryptStanza(fileKey, sealing.passphrase, workFactor)]
      : sealing.recipients.map(recipient => x25519Stanza(fileKey, recipient.publicKey))
  const unsigned = Buffer.from(`${VERSION_LINE}\n${stanzas.join('')}---`)
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(unsigned)
    .digest()
  const nonce = randomBytes(NONCE_SIZE)
  return {
    prefix: Buffer.concat([unsigned, Buffer.from(` ${base64(mac)}\n`), nonce]),
    payloadKey: hkdf(fileKey, nonce, 'payload')
  }
}

function x25519Stanza(fileKey: Buffer, recipient: Buffer): string {
  const { secret, share } = ephemeralKey()
  const shared = x25519(secret, recipient)
  if (!shared) throw new DecryptionError('The recipient is not a usable X25519 key (a point of small order).')
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient]), X25519_LABEL)
  return stanza(['X25519', base64(share)], sealKey(wrapKey, fileKey))
}

async function scryptStanza(fileKey: Buffer, passphrase: string, workFactor: number): Promise<string> {
  const salt = randomBytes(16)
  const wrapKey = await scryptKey(passphrase, salt, workFactor)
  return stanza(['scrypt', base64(salt), String(workFactor)], sealKey(wrapKey, fileKey))
}

function stanza(args: string[], body: Buffer): string {
  const text = base64(body)
  const lines: string[] = []
  for (let at = 0; at <= text.length; at += COLUMNS) lines.push(text.slice(at, at + COLUMNS))
  // The last line is shorter than 64 columns; a body that fills its last line gets an empty one.
  return `-> ${args.join(' ')}\n${lines.join('\n')}\n`
}

/** A parsed header: where the payload starts, and what the stanzas hold. */
interface Header {
  stanzas: { args: string[]; body: Buffer }[]
  /** The bytes the MAC covers: up to and including `---`. */
  signed: Buffer
  mac: Buffer
  /** Header and nonce: the payload's first chunk starts here. */
  payloadStart: number
}

/**
 * Parses the header at the start of `bytes` and opens it. Undefined when `bytes` ends before the
 * header and nonce do (read more and call again). Throws DecryptionError when no identity
 * opens it, or the header is damaged.
 */
export async function openHeader(
  bytes: Buffer,
  opening: Opening,
  what: string
): Promise<{ payloadStart: number; payloadKey: Buffer; openedBy: string } | undefined> {
  const header = parseHeader(bytes, what)
  if (!header) return undefined
  const { fileKey, openedBy } = await unwrapFileKey(header, opening, what)
  const expected = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(header.signed)
    .digest()
  if (!timingSafeEqual(expected, header.mac)) {
    throw new DecryptionError(`The age header of ${what} fails its MAC: the header was altered or damaged; refusing it.`)
  }
  const nonce = bytes.subarray(header.payloadStart - NONCE_SIZE, header.payloadStart)
  return { payloadStart: header.payloadStart, payloadKey: hkdf(fileKey, nonce, 'payload'), openedBy }
}

function parseHeader(bytes: Buffer, what: string): Header | undefined {
  const damaged = (why: string): DecryptionError =>
    new DecryptionError(`The age header of ${what} is malformed (${why}): the object is damaged or not an age file; refusing it.`)
  const stanzas: Header['stanzas'] = []
  let at = 0
  const nextLine = (): string | undefined => {
    const end = bytes.indexOf(0x0a, at)
    if (end < 0) {
      if (bytes.length - at > MAX_HEADER_SIZE) throw damaged('a line longer than 1 MiB')
      return undefined
    }
    const line = bytes.toString('latin1', at, end)
    at = end + 1
    return line
  }
  const version = nextLine()
  if (version === undefined && AGE_MAGIC.subarray(0, bytes.length).equals(bytes)) return undefined
  if (version !== VERSION_LINE) throw damaged('its first line is not age-encryption.org/v1')
  for (;;) {
    const lineStart = at
    const line = nextLine()
    if (line === undefined) return undefined
    if (line.startsWith('--- ')) {
      const mac = unbase64(line.slice(4))
      if (mac?.length !== 32) throw damaged('the MAC line')
      if (stanzas.length === 0) throw damaged('no stanza')
      const payloadStart = at + NONCE_SIZE
      if (bytes.length < payloadStart) return undefined
      return { stanzas, signed: bytes.subarray(0, lineStart + 3), mac, payloadStart }
    }
    if (!line.startsWith('-> ')) throw damaged(`a line that starts neither a stanza nor the MAC`)
    const args = line.slice(3).split(' ')
    if (args.some(arg => arg === '' || /[^\x21-\x7e]/.test(arg))) throw damaged('a stanza argument')
    const body: Buffer[] = []
    for (;;) {
      const bodyLine = nextLine()
      if (bodyLine === undefined) return undefined
      const decoded = bodyLine.length <= COLUMNS ? unbase64(bodyLine) : undefined
      if (!decoded) throw damaged('a stanza body')
      body.push(decoded)
      if (bodyLine.length < COLUMNS) break
    }
    stanzas.push({ args, body: Buffer.concat(body) })
    if (at > MAX_HEADER_SIZE) throw damaged('a header over 1 MiB')
  }
}

async function unwrapFileKey(header: Header, opening: Opening, what: string): Promise<{ fileKey: Buffer; openedBy: string }> {
  const scryptStanzas = header.stanzas.filter(({ args }) => args[0] === 'scrypt')
  if (scryptStanzas.length > 0) {
    if (header.stanzas.length > 1)
      throw new DecryptionError(`The age header of ${what} has a passphrase stanza beside others, which age forbids; refusing it.`)
    return { fileKey: await openScrypt(header.stanzas[0] as Header['stanzas'][number], opening, what), openedBy: 'the passphrase' }
  }
  const x25519Stanzas = header.stanzas.filter(({ args }) => args[0] === 'X25519')
  for (const { args, body } of x25519Stanzas) {
    const share = args.length === 2 ? unbase64(args[1] ?? '') : undefined
    if (share?.length !== 32 || body.length !== FILE_KEY_SIZE + TAG_SIZE)
      throw new DecryptionError(`The age header of ${what} has a malformed X25519 stanza; refusing it.`)
    for (const identity of opening.identities) {
      const shared = x25519(identity.secret, share)
      if (!shared) throw new DecryptionError(`The age header of ${what} has an X25519 stanza with an invalid share; refusing it.`)
      const fileKey = openKey(hkdf(shared, Buffer.concat([share, identity.publicKey]), X25519_LABEL), body)
      if (fileKey) return { fileKey, openedBy: `the identity of ${identity.recipient}` }
    }
  }
  // Other stanzas may be another tool's (a plugin's, or age's random "grease"): named, never counted as recipients.
  const others = [...new Set(header.stanzas.map(({ args }) => args[0]).filter(kind => kind !== 'X25519'))]
  const held = `${x25519Stanzas.length} X25519 ${x25519Stanzas.length === 1 ? 'recipient' : 'recipients'}${others.length > 0 ? ` (and stanzas of other kinds: ${others.join(', ')})` : ''}`
  if (opening.identities.length === 0) {
    throw new DecryptionError(
      `${what} is encrypted to ${held}, not with a passphrase: decrypting it needs one of their identities in 'decrypt-identity'; nothing was restored.`
    )
  }
  throw new DecryptionError(
    `None of the ${opening.identities.length} ${opening.identities.length === 1 ? 'identity' : 'identities'} in 'decrypt-identity' (${opening.identities.map(identity => identity.recipient).join(', ')}) can open ${what}: it is encrypted to ${held}. Pass the identity of a recipient in the backup's 'encrypt-to'; nothing was restored.`
  )
}

async function openScrypt({ args, body }: Header['stanzas'][number], opening: Opening, what: string): Promise<Buffer> {
  if (opening.passphrase === undefined) {
    throw new DecryptionError(
      `${what} is encrypted with a passphrase: set 'decrypt-passphrase' to the backup's 'encrypt-passphrase'; nothing was restored.`
    )
  }
  const salt = args.length === 3 ? unbase64(args[1] ?? '') : undefined
  const workFactor = /^[1-9][0-9]?$/.test(args[2] ?? '') ? Number(args[2]) : Number.NaN
  if (salt?.length !== 16 || !Number.isInteger(workFactor) || body.length !== FILE_KEY_SIZE + TAG_SIZE) {
    throw new DecryptionError(`The age header of ${what} has a malformed scrypt stanza; refusing it.`)
  }
  if (workFactor > MAX_SCRYPT_WORK_FACTOR) {
    throw new DecryptionError(
      `${what} asks for scrypt work factor ${workFactor}, over age's limit of ${MAX_SCRYPT_WORK_FACTOR}: refusing it rather than spend that memory and time.`
    )
  }
  const fileKey = openKey(await scryptKey(opening.passphrase, salt, workFactor), body)
  if (!fileKey)
    throw new DecryptionError(
      `'decrypt-passphrase' does not open ${what}: it is not the passphrase the backup was encrypted with (or the header was altered); nothing was restored.`
    )
  return fileKey
}

/** The payload's chunks, sealed and opened by index: the nonce is the index and the last-chunk flag. */
export class PayloadCipher {
  private readonly nonce = Buffer.alloc(12)

  constructor(private readonly key: Buffer) {}

  /** Seals `plain` (at most CHUNK_SIZE bytes) as chunk `index` into `out` at `at`; returns the bytes written. */
  seal(index: number, last: boolean, plain: Buffer, out: Buffer, at: number): number {
    const cipher = createCipheriv('chacha20-poly1305', this.key, this.nonceOf(index, last), { authTagLength: TAG_SIZE })
    const sealed = cipher.update(plain)
    cipher.final()
    const length = sealed.copy(out, at)
    cipher.getAuthTag().copy(out, at + length)
    release(sealed)
    return length + TAG_SIZE
  }

  /** The plaintext of sealed chunk `index`, or undefined when it fails authentication. */
  open(index: number, last: boolean, sealed: Buffer): Buffer | undefined {
    return openSealed(this.key, this.nonceOf(index, last), sealed)
  }

  private nonceOf(index: number, last: boolean): Buffer {
    this.nonce.writeUIntBE(index, 5, 6)
    this.nonce[11] = last ? 1 : 0
    return this.nonce
  }
}

/**
 * Frees a chunk's ciphertext now: one 64 KiB buffer per chunk, left to the garbage collector,
 * was most of the encryption's memory. Only a buffer that owns its memory whole is freed: small
 * ones may be cut from Node's shared pool.
 */
function release(buffer: Buffer): void {
  const memory = buffer.buffer
  if (memory instanceof ArrayBuffer && buffer.byteOffset === 0 && memory.byteLength === buffer.length && buffer.length >= 32 * 1024)
    memory.transfer(0)
}

/** A stanza's file key is sealed under its own wrap key, so a zero nonce is never reused. */
const ZERO_NONCE = Buffer.alloc(12)

function sealKey(wrapKey: Buffer, fileKey: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', wrapKey, ZERO_NONCE, { authTagLength: TAG_SIZE })
  return Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()])
}

function openKey(wrapKey: Buffer, body: Buffer): Buffer | undefined {
  return openSealed(wrapKey, ZERO_NONCE, body)
}

/** ChaCha20-Poly1305: the plaintext of `sealed` (ciphertext then tag), or undefined when it fails authentication. */
function openSealed(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE))
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE))
  try {
    decipher.final()
    return plain
  } catch {
    return undefined
  }
}

function scryptKey(passphrase: string, salt: Buffer, workFactor: number): Promise<Buffer> {
  const N = 2 ** workFactor
  return new Promise((resolve, reject) =>
    scrypt(
      Buffer.from(passphrase, 'utf8'),
      Buffer.concat([Buffer.from(SCRYPT_LABEL), salt]),
      32,
      { N, r: 8, p: 1, maxmem: 256 * N * 8 },
      (error, key) => (error ? reject(error) : resolve(key))
    )
  )
}

function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))
}

/** age's base64: the standard alphabet, no padding. */
function base64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '')
}

/** Strict: only canonical unpadded base64 is accepted, as age requires. */
function unbase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) return undefined
  const bytes = Buffer.from(text, 'base64')
  return base64(bytes) === text ? bytes : undefined
}
