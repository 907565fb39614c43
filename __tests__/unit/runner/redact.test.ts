// redact() scrubs what leaves the process outside the masked log (error_text, summaries): every
// registered secret, without mangling ordinary words when a secret happens to be very short.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { redact, registerSecret, WHOLE_TOKEN_BELOW } from '../../../src/runner/secrets.js'

// core.setSecret prints a ::add-mask:: command; keep the test output readable.
process.env.GITHUB_ACTIONS = ''
const write = process.stdout.write.bind(process.stdout)
function quietly(register: () => void): void {
  process.stdout.write = () => true
  try {
    register()
  } finally {
    process.stdout.write = write
  }
}

describe('redact', () => {
  it('removes a long secret wherever it appears, even inside a word', () => {
    quietly(() => registerSecret('s3cr3t-long-value'))
    assert.equal(redact('key=xs3cr3t-long-valuex and s3cr3t-long-value'), 'key=x***x and ***')
  })

  it('removes a short secret only where it stands as a whole word', () => {
    quietly(() => registerSecret('kup'))
    assert.ok(WHOLE_TOKEN_BELOW > 'kup'.length)
    assert.equal(redact('the backup failed'), 'the backup failed')
    assert.equal(redact('postgres://user:kup@db.example.com:5432/postgres'), 'postgres://user:***@db.example.com:5432/postgres')
    assert.equal(redact('password kup. Then kup, and (kup)'), 'password ***. Then ***, and (***)')
  })

  it('removes a short secret made of punctuation where no letter or digit touches it', () => {
    quietly(() => registerSecret('!*'))
    assert.equal(redact('p=!*; and a!*b'), 'p=***; and a!*b')
  })

  it('removes a secret that contains a shorter one whole', () => {
    quietly(() => registerSecret('ab1'))
    quietly(() => registerSecret('ab1-and-more-secret'))
    assert.equal(redact('x ab1-and-more-secret y'), 'x *** y')
  })

  it('still removes tokens shaped like JWTs, secret keys and bearer credentials', () => {
    assert.equal(redact('sb_secret_abcDEF123 eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQ Bearer xyz'), '*** *** Bearer ***')
  })
})
