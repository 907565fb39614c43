// The whole archive through age: encryptArchive's pieces decrypt back byte for byte through
// decryptSource, at every size around the 64 KiB chunk and whatever the pieces' sizes; ranged reads
// decrypt just the chunks they cover; and an object altered, cut, padded or reordered anywhere is
// refused with a DecryptionError that says where.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { CHUNK_SIZE, isAgeEncrypted, openHeader, PayloadCipher, sealHeader, SEALED_CHUNK_SIZE, TAG_SIZE } from '../../../src/crypto/age.js'
import { encryptArchive } from '../../../src/crypto/encrypt.js'
import { generateIdentity, parseIdentities, parseRecipient, type Opening, type Sealing } from '../../../src/crypto/keys.js'
import { DecryptionError } from '../../../src/errors.js'
import { decryptSource } from '../../../src/extract/decrypt.js'
import type { ArchiveSource } from '../../../src/extract/source.js'

const NAME = 'backups/2024/05/01/backup.zip.age'
const KiB = 1024

const key = generateIdentity()
const recipient = parseRecipient(key.recipient)
const identities = parseIdentities(key.identity)
assert.ok(typeof recipient !== 'string' && typeof identities !== 'string')
const SEALING: Sealing = { kind: 'recipients', recipients: [recipient] }
const OPENING: Opening = { identities, passphrase: undefined }

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/**
 * The plaintext in pieces of the sizes given (cycled), lent as the archive writers lend theirs:
 * one buffer, refilled for each piece and scribbled over once the next is asked for, so
 * encryptArchive must copy what it keeps.
 */
async function* lentPieces(plain: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  const lent = Buffer.alloc(Math.min(Math.max(...sizes), plain.length))
  for (let at = 0, turn = 0; at < plain.length; turn++) {
    const size = sizes[turn % sizes.length] as number
    const piece = lent.subarray(0, plain.copy(lent, 0, at, at + size))
    at += piece.length
    yield piece
    piece.fill(0xee)
  }
}

interface Encrypted {
  bytes: Buffer
  /** Header and nonce: where the first chunk starts. */
  payloadStart: number
  plaintext: { size: number; sha256: string }
}

async function encrypt(plain: Buffer, pieceSizes: readonly number[] = [200 * KiB]): Promise<Encrypted> {
  const sealed = await sealHeader(SEALING)
  const archive = encryptArchive(lentPieces(plain, pieceSizes), sealed)
  assert.throws(() => archive.plaintext(), /not been encrypted to its end yet/)
  const copies: Buffer[] = []
  // Each piece is lent too: copied before the next is asked for, as the upload does.
  for await (const piece of archive.pieces) copies.push(Buffer.from(piece))
  const bytes = Buffer.concat(copies)
  assert.ok(bytes.subarray(0, sealed.prefix.length).equals(sealed.prefix), 'the header comes first')
  return { bytes, payloadStart: sealed.prefix.length, plaintext: archive.plaintext() }
}

/** An object in memory, streamed in pieces of `readPiece`; the ranges asked of it are recorded. */
function memorySource(bytes: Buffer, readPiece = 100 * KiB): ArchiveSource & { ranges: [number, number][]; streams: number } {
  const source = {
    size: bytes.length,
    name: NAME,
    ranges: [] as [number, number][],
    streams: 0,
    async *stream(): AsyncGenerator<Buffer> {
      source.streams += 1
      for (let at = 0; at < bytes.length; at += readPiece) yield Buffer.from(bytes.subarray(at, at + readPiece))
    },
    async readRange(start: number, end: number): Promise<Buffer> {
      source.ranges.push([start, end])
      return Buffer.from(bytes.subarray(start, Math.min(end, bytes.length)))
    }
  }
  return source
}

async function drain(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of stream) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces)
}

/** The payload key of an encrypted object, to seal chunks of one's own into it. */
async function payloadKeyOf(bytes: Buffer): Promise<Buffer> {
  const opened = await openHeader(bytes, OPENING, NAME)
  assert.ok(opened)
  return opened.payloadKey
}

/** The message of the DecryptionError that opening or streaming `source` ends in. */
async function refusalOf(source: ArchiveSource): Promise<string> {
  try {
    await drain((await decryptSource(source, OPENING)).stream())
  } catch (error) {
    assert.ok(error instanceof DecryptionError, `expected a DecryptionError, got ${String(error)}`)
    assert.ok(error.message.includes(NAME), error.message)
    return error.message
  }
  assert.fail('expected the object to be refused')
}

const chunksOf = (size: number): number => Math.max(1, Math.ceil(size / CHUNK_SIZE))

describe('encryptArchive -> decryptSource', () => {
  const sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 3 * CHUNK_SIZE + 1, 1000 * KiB + 3]
  // Piece sizes, cycled: 0 is the whole archive in one piece; the last mixes tiny pieces, a chunk
  // exactly, and pieces that end one byte either side of a chunk's end.
  const schedules = [[1], [7777], [200 * KiB], [0], [1, CHUNK_SIZE - 2, 1, 1, CHUNK_SIZE, 3, 2 * CHUNK_SIZE - 1, CHUNK_SIZE + 1]]
  // The decrypting side's pieces: a sealed chunk exactly, one byte more, small ones, and large ones.
  const readPieces = [SEALED_CHUNK_SIZE, SEALED_CHUNK_SIZE + 1, 1000, 1024 * KiB]
  let round = 0
  for (const size of sizes) {
    for (const schedule of schedules) {
      // A byte at a time costs two awaits a byte: kept to the sizes that cross no chunk or one.
      if (schedule[0] === 1 && schedule.length === 1 && size > 1 && size !== CHUNK_SIZE + 1) continue
      const readPiece = readPieces[round++ % readPieces.length] as number
      const fed = schedule[0] === 0 ? 'in one piece' : `in pieces of ${schedule.join(', ')}`
      it(`round-trips ${size} bytes fed ${fed}, read in pieces of ${readPiece}`, async () => {
        const plain = randomBytes(size)
        const encrypted = await encrypt(plain, schedule[0] === 0 ? [Math.max(1, size)] : schedule)
        assert.deepEqual(encrypted.plaintext, { size, sha256: sha256(plain) })
        assert.ok(isAgeEncrypted(encrypted.bytes))
        // Each chunk adds its tag; an empty archive is one empty last chunk.
        assert.equal(encrypted.bytes.length, encrypted.payloadStart + size + chunksOf(size) * TAG_SIZE)

        const source = memorySource(encrypted.bytes, readPiece)
        const decrypted = await decryptSource(source, OPENING)
        assert.equal(decrypted.size, size)
        assert.equal(decrypted.name, NAME)
        assert.equal(decrypted.openedBy, `the identity of ${key.recipient}`)
        assert.throws(() => decrypted.stored(), /not been read to its end yet/)
        assert.ok((await drain(decrypted.stream())).equals(plain))
        assert.deepEqual(decrypted.stored(), { bytes: encrypted.bytes.length, sha256: sha256(encrypted.bytes) })
      })
    }
  }

  it('with a passphrase too', async () => {
    const plain = randomBytes(CHUNK_SIZE + 5)
    const sealed = await sealHeader({ kind: 'passphrase', passphrase: 'correct horse battery staple' }, 10)
    const archive = encryptArchive(lentPieces(plain, [9000]), sealed)
    const bytes = await drain(archive.pieces)
    const decrypted = await decryptSource(memorySource(bytes), { identities: [], passphrase: 'correct horse battery staple' })
    assert.equal(decrypted.openedBy, 'the passphrase')
    assert.ok((await drain(decrypted.stream())).equals(plain))
  })

  it('opens a header larger than the first read (300 recipients), reading it again larger', async () => {
    const keys = Array.from({ length: 300 }, () => generateIdentity())
    const recipients = keys.map(({ recipient: text }) => parseRecipient(text))
    const last = parseIdentities((keys.at(-1) as { identity: string }).identity)
    assert.ok(recipients.every(parsed => typeof parsed !== 'string') && typeof last !== 'string')
    const plain = randomBytes(CHUNK_SIZE + 9)
    const sealed = await sealHeader({ kind: 'recipients', recipients })
    assert.ok(sealed.prefix.length > 16 * KiB, `a header of ${sealed.prefix.length} bytes`)
    const bytes = await drain(encryptArchive(lentPieces(plain, [CHUNK_SIZE]), sealed).pieces)
    const source = memorySource(bytes)
    const decrypted = await decryptSource(source, { identities: last, passphrase: undefined })
    assert.ok(source.ranges.length >= 2, 'read again')
    assert.ok((await drain(decrypted.stream())).equals(plain))
  })

  it('seals a whole last chunk with the last flag, never an empty chunk after it', async () => {
    const plain = randomBytes(2 * CHUNK_SIZE)
    const { bytes, payloadStart } = await encrypt(plain, [7777])
    assert.equal(bytes.length, payloadStart + 2 * SEALED_CHUNK_SIZE)
    const last = bytes.subarray(payloadStart + SEALED_CHUNK_SIZE)
    assert.ok(new PayloadCipher(await payloadKeyOf(bytes)).open(1, true, last)?.equals(plain.subarray(CHUNK_SIZE)))
  })
})

describe('DecryptedSource.readRange', () => {
  it('equals the plaintext slice inside a chunk, across boundaries, at the end and past it', async () => {
    for (const size of [3 * CHUNK_SIZE + 1, 1000 * KiB + 3]) {
      const plain = randomBytes(size)
      const { bytes } = await encrypt(plain)
      const decrypted = await decryptSource(memorySource(bytes), OPENING)
      const ranges: [number, number][] = [
        [10, 20],
        [70_000, 70_100],
        [CHUNK_SIZE - 6, CHUNK_SIZE + 10],
        [CHUNK_SIZE - 1, 2 * CHUNK_SIZE + 1],
        [CHUNK_SIZE, 2 * CHUNK_SIZE],
        [0, size],
        [size - 5, size],
        [size - 1, size],
        [size - 5, size + 100],
        [0, size + SEALED_CHUNK_SIZE],
        [size, size + 10],
        [size + 5, size + 10],
        [2 * CHUNK_SIZE, 2 * CHUNK_SIZE]
      ]
      // Before the stream, as zip reads its central directory first.
      for (const [start, end] of ranges) {
        const got = await decrypted.readRange(start, end)
        assert.ok(got.equals(plain.subarray(start, Math.min(end, size))), `${size}: ${start}..${end}`)
      }
    }
  })

  it('reads only the chunks the range covers', async () => {
    const plain = randomBytes(4 * CHUNK_SIZE + 100)
    const { bytes, payloadStart } = await encrypt(plain)
    const source = memorySource(bytes)
    const decrypted = await decryptSource(source, OPENING)
    const chunkAt = (index: number): number => payloadStart + index * SEALED_CHUNK_SIZE
    const cases: [number, number, [number, number]][] = [
      [70_000, 70_100, [chunkAt(1), chunkAt(2)]],
      [CHUNK_SIZE - 1, 2 * CHUNK_SIZE + 1, [chunkAt(0), chunkAt(3)]],
      [plain.length - 3, plain.length + 50, [chunkAt(4), bytes.length]]
    ]
    for (const [start, end, range] of cases) {
      source.ranges.length = 0
      assert.ok((await decrypted.readRange(start, end)).equals(plain.subarray(start, end)))
      assert.deepEqual(source.ranges, [range])
    }
    assert.equal(source.streams, 0)
  })

  // A short ranged read (fileSource returns what the file still holds) leaves a chunk shorter than
  // its tag: refused as a DecryptionError like any chunk that does not authenticate.
  it('refuses with a DecryptionError when the source returns fewer bytes than asked', async () => {
    const { bytes } = await encrypt(randomBytes(3 * CHUNK_SIZE + 1))
    const shrunk = bytes.subarray(0, bytes.length - 10)
    const source = { ...memorySource(shrunk), size: bytes.length }
    const decrypted = await decryptSource(source, OPENING)
    await assert.rejects(decrypted.readRange(3 * CHUNK_SIZE - 5, 3 * CHUNK_SIZE + 1), DecryptionError)
  })

  it('is empty for an empty archive', async () => {
    const { bytes } = await encrypt(Buffer.alloc(0))
    const decrypted = await decryptSource(memorySource(bytes), OPENING)
    assert.equal(decrypted.size, 0)
    assert.equal((await decrypted.readRange(0, 10)).length, 0)
  })

  it('refuses a range over an altered chunk', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(3 * CHUNK_SIZE + 1))
    bytes.writeUInt8(bytes.readUInt8(payloadStart + SEALED_CHUNK_SIZE + 9) ^ 0x01, payloadStart + SEALED_CHUNK_SIZE + 9)
    const decrypted = await decryptSource(memorySource(bytes), OPENING)
    assert.equal((await decrypted.readRange(0, 100)).length, 100)
    await assert.rejects(decrypted.readRange(CHUNK_SIZE - 1, CHUNK_SIZE + 1), (error: unknown) => {
      assert.ok(error instanceof DecryptionError)
      assert.match(error.message, /fails authentication in chunk 2 of 4/)
      return true
    })
  })
})

describe('decryptSource refusals', () => {
  // Four chunks: three full ones and a last one of a single byte.
  const SIZE = 3 * CHUNK_SIZE + 1

  it('a wrong identity, before any of the object is streamed', async () => {
    const { bytes } = await encrypt(randomBytes(100))
    const source = memorySource(bytes)
    const other = parseIdentities(generateIdentity().identity)
    assert.ok(typeof other !== 'string')
    await assert.rejects(decryptSource(source, { identities: other, passphrase: undefined }), DecryptionError)
    assert.equal(source.streams, 0)
  })

  it('one byte flipped in a middle chunk, the first chunk, or the last chunk, naming the chunk', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(SIZE))
    const cases: [number, RegExp][] = [
      [payloadStart + SEALED_CHUNK_SIZE + 1234, new RegExp(`in chunk 2 of 4 \\(byte ${payloadStart + SEALED_CHUNK_SIZE}\\)`)],
      [payloadStart + 2 * SEALED_CHUNK_SIZE - 1, /in chunk 2 of 4/],
      [payloadStart, /in chunk 1 of 4 /],
      [bytes.length - 1, new RegExp(`in its last chunk \\(byte ${payloadStart + 3 * SEALED_CHUNK_SIZE}\\)`)],
      [bytes.length - TAG_SIZE - 1, /in its last chunk/]
    ]
    for (const [at, message] of cases) {
      const damaged = Buffer.from(bytes)
      damaged[at] = (damaged[at] ?? 0) ^ 0x01
      assert.match(await refusalOf(memorySource(damaged)), message, `byte ${at}`)
    }
  })

  it('a whole middle chunk dropped', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(SIZE))
    const dropped = Buffer.concat([
      bytes.subarray(0, payloadStart + SEALED_CHUNK_SIZE),
      bytes.subarray(payloadStart + 2 * SEALED_CHUNK_SIZE)
    ])
    assert.equal(dropped.length, bytes.length - 65552)
    assert.match(await refusalOf(memorySource(dropped)), /in chunk 2 of 3/)
  })

  it('two chunks swapped', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(SIZE))
    const chunk = (index: number): Buffer =>
      bytes.subarray(payloadStart + index * SEALED_CHUNK_SIZE, payloadStart + (index + 1) * SEALED_CHUNK_SIZE)
    const swapped = Buffer.concat([
      bytes.subarray(0, payloadStart),
      chunk(1),
      chunk(0),
      bytes.subarray(payloadStart + 2 * SEALED_CHUNK_SIZE)
    ])
    assert.equal(swapped.length, bytes.length)
    assert.match(await refusalOf(memorySource(swapped)), /in chunk 1 of 4/)
  })

  it('cut at a chunk boundary: the chunk now last was not sealed as the last', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(SIZE))
    for (const chunks of [3, 1]) {
      const cut = bytes.subarray(0, payloadStart + chunks * SEALED_CHUNK_SIZE)
      assert.match(await refusalOf(memorySource(cut)), /in its last chunk/, `${chunks} chunks left`)
    }
  })

  it('cut inside a chunk, inside its tag, after the header, or inside the header', async () => {
    const { bytes, payloadStart } = await encrypt(randomBytes(SIZE))
    const cases: [number, RegExp][] = [
      [payloadStart + SEALED_CHUNK_SIZE + 100, /in its last chunk/],
      [payloadStart + 2 * SEALED_CHUNK_SIZE + TAG_SIZE + 1, /in its last chunk/],
      // Less than a tag left of the last chunk: refused from the size alone, before any chunk is read.
      [payloadStart + SEALED_CHUNK_SIZE + 10, /ends in the middle of an age chunk/],
      [payloadStart + SEALED_CHUNK_SIZE + TAG_SIZE, /ends in the middle of an age chunk/],
      [payloadStart, /ends in the middle of an age chunk/],
      [payloadStart - 1, /ends inside its age header/],
      [payloadStart - 20, /ends inside its age header/]
    ]
    for (const [length, message] of cases) {
      assert.match(await refusalOf(memorySource(bytes.subarray(0, length))), message, `cut to ${length}`)
    }
  })

  it('one byte appended, after a short last chunk or a full one', async () => {
    for (const size of [SIZE, 3 * CHUNK_SIZE, 0]) {
      const { bytes } = await encrypt(randomBytes(size))
      const message = await refusalOf(memorySource(Buffer.concat([bytes, Buffer.from([0])])))
      assert.match(message, /in its last chunk|ends in the middle of an age chunk/, `${size} bytes`)
    }
  })

  it('an empty last chunk after a full one, which age never writes', async () => {
    const plain = randomBytes(CHUNK_SIZE)
    const { bytes, payloadStart } = await encrypt(plain)
    const payloadKey = await payloadKeyOf(bytes)
    const cipher = new PayloadCipher(payloadKey)
    const payload = Buffer.alloc(SEALED_CHUNK_SIZE + TAG_SIZE)
    const used = cipher.seal(0, false, plain, payload, 0)
    cipher.seal(1, true, Buffer.alloc(0), payload, used)
    assert.match(
      await refusalOf(memorySource(Buffer.concat([bytes.subarray(0, payloadStart), payload]))),
      /ends in the middle of an age chunk/
    )
  })

  it('a stream longer or shorter than the size, or with another header than the one opened', async () => {
    const { bytes } = await encrypt(randomBytes(2 * CHUNK_SIZE + 7))
    const longer = { ...memorySource(Buffer.concat([bytes, randomBytes(3)])), size: bytes.length }
    assert.match(await refusalOf(longer), new RegExp(`has more than the ${bytes.length} bytes expected`))
    const shorter = { ...memorySource(bytes.subarray(0, bytes.length - 5)), size: bytes.length, readRange: memorySource(bytes).readRange }
    assert.match(await refusalOf(shorter), /the download was cut short/)
    // The object was replaced between the header's read and the stream: another header, another key.
    const { bytes: other } = await encrypt(randomBytes(2 * CHUNK_SIZE + 7))
    const replaced = { ...memorySource(other), size: bytes.length, readRange: memorySource(bytes).readRange }
    assert.match(await refusalOf(replaced), /changed while it was read: its age header differs/)
  })
})
