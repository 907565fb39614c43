// Bech32 as BIP 173 defines it (age's key encoding): the BIP's own test vectors, a round trip of
// age-sized keys, and the strict 5-to-8-bit regroup that keeps one key to one spelling.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeBech32, encodeBech32 } from '../../../src/crypto/bech32.js'

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'

/**
 * BIP 173's checksum, written again from the BIP, so a string can be made of chosen 5-bit words
 * (encodeBech32 only takes bytes, and so always pads with zeros).
 */
function withChecksum(prefix: string, words: number[]): string {
  const generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
  const codes = [...prefix].map(char => char.charCodeAt(0))
  let check = 1
  for (const value of [...codes.map(code => code >> 5), 0, ...codes.map(code => code & 31), ...words, 0, 0, 0, 0, 0, 0]) {
    const top = check >>> 25
    check = ((check & 0x1ffffff) << 5) ^ value
    for (let bit = 0; bit < 5; bit++) if ((top >>> bit) & 1) check ^= generator[bit] ?? 0
  }
  check = (check ^ 1) >>> 0
  const checkWords = Array.from({ length: 6 }, (_, index) => (check >>> (5 * (5 - index))) & 31)
  return `${prefix}1${[...words, ...checkWords].map(word => CHARSET[word]).join('')}`
}

describe('bech32', () => {
  // BIP 173's valid strings, with the bytes their data part holds.
  const valid: [string, string, string][] = [
    ['A12UEL5L', 'a', ''],
    ['a12uel5l', 'a', ''],
    ['an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs', '', ''],
    ['abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw', 'abcdef', '00443214c74254b635cf84653a56d7c675be77df'],
    [`11${'q'.repeat(82)}c8247j`, '1', '00'.repeat(51)],
    [
      'split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w',
      'split',
      'c5f38b70305f519bf66d85fb6cf03058f3dde463ecd7918f2dc743918f2d'
    ],
    ['?1ezyfcl', '?', '']
  ]
  for (const [text, prefix, hex] of valid) {
    it(`decodes BIP 173's '${text.length > 30 ? `${text.slice(0, 27)}...` : text}'`, () => {
      const decoded = decodeBech32(text)
      assert.ok(decoded)
      // The prefix comes back in lower case, whatever the string's case.
      if (prefix !== '') assert.equal(decoded.prefix, prefix)
      else assert.equal(decoded.prefix, text.slice(0, text.lastIndexOf('1')))
      assert.equal(decoded.data.toString('hex'), hex)
    })
  }

  // BIP 173's invalid strings (except the one refused for its length only), and a few more.
  const invalid: [string, string][] = [
    ['\x201nwldj5', 'a prefix character out of range (space)'],
    ['\x7f1axkwrx', 'a prefix character out of range (DEL)'],
    ['\x801eym55h', 'a prefix character out of range (0x80)'],
    ['pzry9x0s0muk', 'no separator'],
    ['1pzry9x0s0muk', 'an empty prefix'],
    ['x1b4n0q5v', "a data character not in the charset ('b')"],
    ['li1dgmt3', 'a checksum shorter than 6 characters'],
    ['de1lg7wt\xff', 'a checksum character out of range'],
    ['A1G7SGD8', 'a checksum computed on the upper-case prefix'],
    ['10a06t8', 'an empty prefix and too short'],
    ['1qzzfhee', 'an empty prefix'],
    ['A12uEL5L', 'mixed case'],
    ['A12UEL5M', 'a bad checksum'],
    ['abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx', 'a bad checksum (last character)'],
    ['abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxwq', 'a character appended'],
    ['a1', 'an empty data part with no checksum']
  ]
  for (const [text, why] of invalid) {
    it(`refuses ${why}`, () => {
      assert.equal(decodeBech32(text), undefined)
    })
  }

  it('sets no length limit, unlike BIP 173 (age keys may be longer than 90 characters)', () => {
    const long = 'an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx'
    assert.equal(long.length, 91)
    assert.ok(decodeBech32(long))
    const big = randomBytes(1200)
    assert.ok(decodeBech32(encodeBech32('age1pq', big))?.data.equals(big))
  })

  for (const prefix of ['age', 'age-secret-key-']) {
    it(`round-trips random 32-byte keys with the prefix '${prefix}', in either case`, () => {
      for (let round = 0; round < 50; round++) {
        const data = randomBytes(32)
        const text = encodeBech32(prefix, data)
        // age's keys: the prefix, '1', 52 data characters and 6 of checksum.
        assert.equal(text.length, prefix.length + 1 + 52 + 6)
        assert.equal(text, text.toLowerCase())
        for (const spelling of [text, text.toUpperCase()]) {
          const decoded = decodeBech32(spelling)
          assert.equal(decoded?.prefix, prefix)
          assert.ok(decoded?.data.equals(data))
        }
      }
    })
  }

  it('round-trips every length from 0 to 40 bytes (the 8-to-5 padding of each)', () => {
    for (let length = 0; length <= 40; length++) {
      const data = randomBytes(length)
      assert.ok(decodeBech32(encodeBech32('age', data))?.data.equals(data), `length ${length}`)
    }
  })

  it('agrees with the checksum written here from the BIP', () => {
    const data = randomBytes(32)
    const words: number[] = []
    for (let bit = 0; bit < 256; bit += 5) {
      const value = (BigInt(`0x${data.toString('hex')}`) << 4n) >> BigInt(260 - bit - 5)
      words.push(Number(value & 31n))
    }
    assert.equal(withChecksum('age', words), encodeBech32('age', data))
  })

  it('refuses padding bits that are not zero when regrouping 5 to 8 bits', () => {
    // 32 bytes take 52 words, the last with 4 bits of padding: a one there spells the same key another way.
    const words = Array.from({ length: 52 }, () => 0)
    assert.deepEqual(decodeBech32(withChecksum('age', words))?.data, Buffer.alloc(32))
    for (const padding of [1, 2, 4, 8]) {
      words[51] = padding
      assert.equal(decodeBech32(withChecksum('age', words)), undefined, `padding ${padding}`)
    }
  })

  it('refuses a whole extra word of padding, even of zeros', () => {
    // 1 byte is 2 words (2 bits of padding); a third word makes 7 bits of padding, more than a word.
    assert.deepEqual(decodeBech32(withChecksum('age', [31, 28]))?.data, Buffer.from([0xff]))
    assert.equal(decodeBech32(withChecksum('age', [31, 28, 0])), undefined)
  })
})
