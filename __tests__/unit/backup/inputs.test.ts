// Input validation: every bad value is refused with a message that names the input.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InputError } from '../../../src/errors.js'
import { parseBackupInputs, secretValues, type InputName } from '../../../src/backup/inputs.js'
import { DEFAULT_KEY_TEMPLATE } from '../../../src/backup/key.js'
import { generateIdentity } from '../../../src/crypto/keys.js'
import { parseLedgerInputs } from '../../../src/ledger/inputs.js'

const LEDGER_OK: Partial<Record<InputName, string>> = {
  'dispatch-id': '123E4567-E89B-12D3-A456-426614174000',
  'supabase-url': 'https://abcd.supabase.co/',
  'supabase-key': 'service-key'
}
const BACKUP_OK: Partial<Record<InputName, string>> = { path: 'data\n!data/tmp\n', bucket: 'my-backups' }

const reader = (values: Partial<Record<InputName, string>>) => (name: InputName) => values[name] ?? ''

function problemsOf(run: () => unknown): { input: string; message: string }[] {
  try {
    run()
  } catch (error) {
    assert.ok(error instanceof InputError, `expected InputError, got ${String(error)}`)
    return [...error.problems]
  }
  assert.fail('expected the inputs to be refused')
}

describe('ledger inputs', () => {
  it('accepts a UUID in any case and normalises it', () => {
    const inputs = parseLedgerInputs(reader(LEDGER_OK))
    assert.equal(inputs.dispatchId, '123e4567-e89b-12d3-a456-426614174000')
    assert.equal(inputs.supabaseUrl, 'https://abcd.supabase.co')
    assert.equal(inputs.table, 'backup_history')
    assert.deepEqual(inputs.access, { kind: 'table', supabaseKey: 'service-key' })
  })

  it('with backup-api-key reaches the rows through the update-backup function, and needs no supabase-key', () => {
    const inputs = parseLedgerInputs(reader({ ...LEDGER_OK, 'supabase-key': '', 'backup-api-key': 'api-key' }))
    assert.deepEqual(inputs.access, { kind: 'function', apiKey: 'api-key', functionName: 'update-backup' })
    const renamed = parseLedgerInputs(
      reader({ ...LEDGER_OK, 'supabase-key': '', 'backup-api-key': 'k', 'update-function': 'report_backup' })
    )
    assert.deepEqual(renamed.access, { kind: 'function', apiKey: 'k', functionName: 'report_backup' })
  })

  it('refuses both keys at once, a table with the function, and update-function without its key', () => {
    const both = problemsOf(() => parseLedgerInputs(reader({ ...LEDGER_OK, 'backup-api-key': 'k', table: 'other' })))
    assert.deepEqual(both.map(p => p.input).sort(), ['supabase-key', 'table'])
    const [alone] = problemsOf(() => parseLedgerInputs(reader({ ...LEDGER_OK, 'update-function': 'x' })))
    assert.equal(alone?.input, 'update-function')
    const [neither] = problemsOf(() => parseLedgerInputs(reader({ ...LEDGER_OK, 'supabase-key': '' })))
    assert.equal(neither?.input, 'supabase-key')
    assert.match(neither?.message ?? '', /is required.*Or set 'backup-api-key'/)
  })

  it('requires dispatch-id unless create-row, and never falls back to the run id', () => {
    const [problem] = problemsOf(() => parseLedgerInputs(reader({ ...LEDGER_OK, 'dispatch-id': '' })))
    assert.equal(problem?.input, 'dispatch-id')
    assert.match(problem?.message ?? '', /required.*never falls back to the run id/)
    assert.equal(parseLedgerInputs(reader({ ...LEDGER_OK, 'dispatch-id': '', 'create-row': 'true' })).dispatchId, undefined)
  })

  for (const bad of ['12345', 'not-a-uuid', '123e4567-e89b-12d3-a456-42661417400', '${{ github.run_id }}']) {
    it(`refuses dispatch-id '${bad}'`, () => {
      const [problem] = problemsOf(() => parseLedgerInputs(reader({ ...LEDGER_OK, 'dispatch-id': bad })))
      assert.equal(problem?.input, 'dispatch-id')
      assert.match(problem?.message ?? '', /must be a UUID/)
    })
  }

  it('names every bad ledger input at once and never echoes the key', () => {
    const problems = problemsOf(() =>
      parseLedgerInputs(reader({ 'dispatch-id': 'x', 'supabase-url': 'ftp://x', table: 'drop table;', 'create-row': 'yes' }))
    )
    assert.deepEqual(problems.map(p => p.input).sort(), ['create-row', 'dispatch-id', 'supabase-key', 'supabase-url', 'table'])
  })
})

describe('backup inputs', () => {
  it('applies the defaults of the contract', () => {
    const inputs = parseBackupInputs(reader(BACKUP_OK), {})
    assert.deepEqual(inputs.patterns, ['data', '!data/tmp'])
    assert.equal(inputs.format, 'zip')
    assert.equal(inputs.compressionLevel, 6)
    assert.equal(inputs.keyTemplate, DEFAULT_KEY_TEMPLATE)
    assert.equal(inputs.keyIsDefault, true)
    assert.equal(inputs.region, 'us-east-1')
    assert.equal(inputs.includeHiddenFiles, false)
    assert.equal(inputs.credentials, undefined)
    assert.deepEqual(inputs.storage, { storageClass: undefined, sse: undefined, sseKmsKeyId: undefined, tags: [] })
  })

  it('reads the storage options: class, encryption (any case), KMS key and tags in order', () => {
    const inputs = parseBackupInputs(
      reader({
        ...BACKUP_OK,
        'storage-class': 'GLACIER_IR',
        sse: 'AWS:KMS',
        'sse-kms-key-id': 'alias/backups',
        tags: 'app=my app\n# comment\n\nretention = 30d\nowner=ops@example.com'
      }),
      {}
    )
    assert.deepEqual(inputs.storage, {
      storageClass: 'GLACIER_IR',
      sse: 'aws:kms',
      sseKmsKeyId: 'alias/backups',
      tags: [
        ['app', 'my app'],
        ['retention', '30d'],
        ['owner', 'ops@example.com']
      ]
    })
  })

  it('takes the region from AWS_REGION when the input is empty', () => {
    assert.equal(parseBackupInputs(reader(BACKUP_OK), { AWS_REGION: 'eu-west-1' }).region, 'eu-west-1')
  })

  it('uses the per-format default compression level', () => {
    assert.equal(parseBackupInputs(reader({ ...BACKUP_OK, format: 'tar.zst' }), {}).compressionLevel, 3)
    assert.equal(parseBackupInputs(reader({ ...BACKUP_OK, format: 'tar' }), {}).compressionLevel, undefined)
  })

  const cases: [string, Partial<Record<InputName, string>>, InputName, RegExp][] = [
    ['missing path', { path: '' }, 'path', /is required/],
    ['absolute path', { path: '/etc' }, 'path', /absolute/],
    ['path leaving the workspace', { path: 'data/../../secrets' }, 'path', /leaves the workspace/],
    ['excluded absolute path', { path: 'data\n!/etc' }, 'path', /absolute/],
    ['unknown format', { format: 'rar' }, 'format', /must be one of zip, tar.gz, tar.zst, tar/],
    ['zip level out of range', { 'compression-level': '10' }, 'compression-level', /0 to 9/],
    ['zstd level out of range', { format: 'tar.zst', 'compression-level': '0' }, 'compression-level', /1 to 19/],
    ['level for tar', { format: 'tar', 'compression-level': '5' }, 'compression-level', /does not apply/],
    ['level not a number', { 'compression-level': 'fast' }, 'compression-level', /whole number/],
    ['missing bucket', { bucket: '' }, 'bucket', /is required/],
    ['bucket as URL', { bucket: 's3://my-backups' }, 'bucket', /bucket name/],
    ['unknown placeholder', { key: 'backups/{date}.zip' }, 'key', /unknown placeholder \{date\}/],
    ['key starting with /', { key: '/backups/x.zip' }, 'key', /must not start with/],
    ['key with ..', { key: 'backups/../x.zip' }, 'key', /segments/],
    ['key with control character', { key: 'backups/x\u0007.zip' }, 'key', /control characters/],
    ['endpoint not a URL', { endpoint: 'minio:9000' }, 'endpoint', /http\(s\) URL/],
    ['bad region', { region: 'Europe' }, 'region', /region name/],
    ['bad boolean', { 'force-path-style': 'yes' }, 'force-path-style', /true or false/],
    ['secret without key id', { 'aws-secret-access-key': 's' }, 'aws-access-key-id', /is required when/],
    ['key id without secret', { 'aws-access-key-id': 'AKIA' }, 'aws-secret-access-key', /is required when/],
    ['session token alone', { 'aws-session-token': 't' }, 'aws-session-token', /needs/],
    ['lower-case storage class', { 'storage-class': 'standard_ia' }, 'storage-class', /upper case/],
    ['unknown encryption', { sse: 'aws:kms:xyz' }, 'sse', /must be one of AES256, aws:kms, aws:kms:dsse/],
    ['KMS key without aws:kms', { sse: 'AES256', 'sse-kms-key-id': 'alias/x' }, 'sse-kms-key-id', /needs 'sse: aws:kms'/],
    ['KMS key with spaces', { sse: 'aws:kms', 'sse-kms-key-id': 'my key' }, 'sse-kms-key-id', /KMS key id/],
    ['a tag line without =', { tags: 'retention' }, 'tags', /not key=value/],
    ['an empty tag key', { tags: '=value' }, 'tags', /not key=value/],
    ['a tag key twice', { tags: 'a=1\na=2' }, 'tags', /the key 'a' twice/],
    ['the aws: tag prefix', { tags: 'aws:created=1' }, 'tags', /reserved aws: prefix/],
    ['characters S3 refuses in tags', { tags: 'team=a&b' }, 'tags', /characters S3 does not allow/],
    ['a too long tag value', { tags: `a=${'v'.repeat(257)}` }, 'tags', /too long/],
    ['more than 10 tags', { tags: Array.from({ length: 11 }, (_, i) => `t${i}=v`).join('\n') }, 'tags', /at most 10/]
  ]
  for (const [title, values, input, message] of cases) {
    it(`refuses ${title}, naming '${input}'`, () => {
      const problems = problemsOf(() => parseBackupInputs(reader({ ...BACKUP_OK, ...values }), {}))
      const problem = problems.find(p => p.input === input)
      assert.ok(problem, `no problem named ${input}: ${JSON.stringify(problems)}`)
      assert.match(problem.message, message)
    })
  }

  it('never echoes a secret input in a message', () => {
    const error = (() => {
      try {
        parseBackupInputs(reader({ ...BACKUP_OK, 'aws-secret-access-key': 'TOP-SECRET-VALUE', format: 'nope' }), {})
      } catch (caught) {
        return caught as Error
      }
      return undefined
    })()
    assert.ok(error)
    assert.doesNotMatch(error.message, /TOP-SECRET-VALUE/)
  })
})

describe('encryption inputs', () => {
  const [alice, bob] = [generateIdentity(), generateIdentity()]
  const PASSPHRASE = 'correct horse battery staple'

  it('reads encrypt-to as recipients, one a line: comments, blank lines and CRLF skipped, duplicates collapsed', () => {
    const inputs = parseBackupInputs(
      reader({ ...BACKUP_OK, 'encrypt-to': `# ops laptop\r\n${alice.recipient}\r\n\r\n  ${bob.recipient}  \r\n${alice.recipient}\r\n` }),
      {}
    )
    assert.equal(inputs.encryption?.kind, 'recipients')
    assert.deepEqual(
      inputs.encryption.recipients.map(recipient => recipient.text),
      [alice.recipient, bob.recipient]
    )
  })

  it('reads encrypt-passphrase, and encrypts nothing when neither is set', () => {
    assert.deepEqual(parseBackupInputs(reader({ ...BACKUP_OK, 'encrypt-passphrase': PASSPHRASE }), {}).encryption, {
      kind: 'passphrase',
      passphrase: PASSPHRASE
    })
    assert.equal(parseBackupInputs(reader({ ...BACKUP_OK, 'encrypt-to': '# none yet\n' }), {}).encryption, undefined)
  })

  it('masks the passphrase', () => {
    assert.ok(secretValues(reader({ ...BACKUP_OK, 'encrypt-passphrase': PASSPHRASE })).includes(PASSPHRASE))
  })

  it("refuses encrypt-to with encrypt-passphrase, naming 'encrypt-passphrase' and never echoing it", () => {
    const problems = problemsOf(() =>
      parseBackupInputs(reader({ ...BACKUP_OK, 'encrypt-to': alice.recipient, 'encrypt-passphrase': PASSPHRASE }), {})
    )
    assert.deepEqual(
      problems.map(p => p.input),
      ['encrypt-passphrase']
    )
    assert.match(problems[0]?.message ?? '', /cannot be combined with 'encrypt-to'/)
    assert.doesNotMatch(problems[0]?.message ?? '', /horse/)
  })

  it('refuses a short passphrase, naming it, without echoing it', () => {
    const short = 'Zq9!x'
    const error = (() => {
      try {
        parseBackupInputs(reader({ ...BACKUP_OK, 'encrypt-passphrase': short }), {})
      } catch (caught) {
        return caught
      }
      return undefined
    })()
    assert.ok(error instanceof InputError)
    assert.deepEqual(
      error.problems.map(p => p.input),
      ['encrypt-passphrase']
    )
    assert.match(error.message, /is 5 characters long; use at least 12/)
    assert.ok(!error.message.includes(short), error.message)
    // 12 characters is enough.
    assert.equal(parseBackupInputs(reader({ ...BACKUP_OK, 'encrypt-passphrase': 'x'.repeat(12) }), {}).encryption?.kind, 'passphrase')
  })

  it("refuses each bad encrypt-to line, naming 'encrypt-to', and an identity pasted there without echoing it", () => {
    const problems = problemsOf(() =>
      parseBackupInputs(
        reader({
          ...BACKUP_OK,
          'encrypt-to': `${alice.recipient}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA me@laptop\n${bob.identity}\nage1nope`
        }),
        {}
      )
    )
    assert.deepEqual(
      problems.map(p => p.input),
      ['encrypt-to', 'encrypt-to', 'encrypt-to']
    )
    assert.match(problems[0]?.message ?? '', /SSH public key/)
    assert.match(problems[1]?.message ?? '', /age identity .* which is secret/)
    assert.match(problems[2]?.message ?? '', /'age1nope' is not an age recipient/)
    assert.ok(!problems.some(p => p.message.includes(bob.identity.slice(16, 40))))
  })
})
