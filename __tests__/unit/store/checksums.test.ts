// S3's CRC32 forms: the FULL_OBJECT checksum combined from the parts' is the CRC32 of the whole
// object, and the COMPOSITE one is the CRC32 of the part CRC32s, as S3 documents it.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { crc32 } from 'node:zlib'
import { compositeCrc32, crc32Base64, fullObjectCrc32 } from '../../../src/store/checksums.js'
import { PartHasher } from '../../../src/store/digests.js'

describe('CRC32 of a multipart object', () => {
  it('combined from parts of any sizes, it equals the CRC32 of the whole object; each part has its own digests', async () => {
    const whole = randomBytes(3 * 1024 * 1024 + 17)
    const cuts = [0, 1, 1024 * 1024, 1024 * 1024 + 5, 3 * 1024 * 1024, whole.length]
    const parts = cuts.slice(1).map((end, index) => whole.subarray(cuts[index], end))
    const hasher = new PartHasher({ partMd5: true, wholeMd5: true, partSha256: true })
    try {
      const perPart = await Promise.all(parts.map(part => hasher.add(part)))
      const digests = await hasher.digests()
      const lengths = parts.map(part => part.length)
      assert.equal(
        fullObjectCrc32(
          perPart.map(digest => digest.crc32),
          lengths
        ),
        crc32(whole)
      )
      assert.equal(digests.sha256, createHash('sha256').update(whole).digest('hex'))
      assert.equal(digests.md5, createHash('md5').update(whole).digest('hex'))
      perPart.forEach((digest, index) => {
        const part = parts[index] ?? Buffer.alloc(0)
        assert.equal(digest.crc32, crc32(part))
        assert.deepEqual(digest.md5, createHash('md5').update(part).digest())
        assert.equal(digest.sha256, createHash('sha256').update(part).digest('hex'))
      })
    } finally {
      await hasher.close()
    }
  })

  it('a plan without MD5s and part SHA-256s computes none of them', async () => {
    const hasher = new PartHasher({ partMd5: false, wholeMd5: false, partSha256: false })
    try {
      const part = await hasher.add(Buffer.from('abc'))
      assert.deepEqual([part.md5, part.sha256], [undefined, undefined])
      assert.equal((await hasher.digests()).md5, undefined)
    } finally {
      await hasher.close()
    }
  })

  it("is written as S3 writes it: 4 bytes big-endian, base64 ('123456789' has the check value cbf43926)", () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926)
    assert.equal(crc32Base64(0xcbf43926), Buffer.from('cbf43926', 'hex').toString('base64'))
    assert.equal(crc32Base64(0), 'AAAAAA==')
  })

  it('COMPOSITE: the CRC32 of the concatenated part CRC32s, then -<parts>', () => {
    const partCrcs = [0xcbf43926, 0x00000001, 0xffffffff]
    const concatenated = Buffer.from('cbf4392600000001ffffffff', 'hex')
    assert.equal(compositeCrc32(partCrcs), `${crc32Base64(crc32(concatenated))}-3`)
  })
})
