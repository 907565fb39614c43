// The Storage inputs of backup and restore: bucket lists, the restore's mapping, the endpoint's
// default, and that every problem names its input.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseBackupInputs, secretValues, type InputName } from '../../../../src/backup/inputs.js'
import { InputError } from '../../../../src/errors.js'
import { parseBucketMapping } from '../../../../src/restore/inputs.js'
import { parseBucketList } from '../../../../src/sources/storage/inputs.js'
import type { InputProblem } from '../../../../src/runner/inputs.js'

const STORAGE_OK: Partial<Record<InputName, string>> = {
  bucket: 'my-backups',
  'supabase-url': 'https://abcd.supabase.co/',
  'storage-buckets': 'avatars\nuploads',
  'storage-region': 'eu-central-1',
  'storage-access-key-id': 'storage-key-id',
  'storage-secret-access-key': 'storage-secret'
}
const reader = (values: Partial<Record<InputName, string>>) => (name: InputName) => values[name] ?? ''

function problemsOf(values: Partial<Record<InputName, string>>): InputProblem[] {
  try {
    parseBackupInputs(reader(values), {})
  } catch (error) {
    assert.ok(error instanceof InputError, String(error))
    return [...error.problems]
  }
  return []
}

describe('storage-buckets (backup)', () => {
  it('reads one name per line, skipping blanks and comments', () => {
    const problems: InputProblem[] = []
    assert.deepEqual(parseBucketList(' avatars \n\n# old\nuser uploads\n', problems), { all: false, names: ['avatars', 'user uploads'] })
    assert.deepEqual(problems, [])
  })

  it("reads '*' as every bucket, and refuses it mixed with names", () => {
    assert.deepEqual(parseBucketList('*', []), { all: true })
    const problems: InputProblem[] = []
    parseBucketList('*\navatars', problems)
    assert.match(problems[0]?.message ?? '', /'\*' \(every bucket\) and bucket names/)
  })

  it('refuses what is not a bucket name, and a name twice', () => {
    const problems: InputProblem[] = []
    parseBucketList('s3://avatars\navatars\navatars', problems)
    assert.deepEqual(
      problems.map(problem => problem.input),
      ['storage-buckets', 'storage-buckets']
    )
    assert.match(problems[0]?.message ?? '', /'s3:\/\/avatars', which is not a bucket name/)
    assert.match(problems[1]?.message ?? '', /twice/)
  })

  it('is empty when unset', () => {
    assert.equal(parseBucketList(' \n# none\n', []), undefined)
  })
})

describe('storage-buckets (restore)', () => {
  it('maps a name to itself, or archived=target', () => {
    assert.deepEqual(parseBucketMapping('avatars\nuploads = uploads-copy', []), {
      all: false,
      pairs: [
        { from: 'avatars', to: 'avatars' },
        { from: 'uploads', to: 'uploads-copy' }
      ]
    })
    assert.deepEqual(parseBucketMapping('*', []), { all: true })
  })

  it('refuses two buckets into one, and lines that are not name or name=name', () => {
    const problems: InputProblem[] = []
    parseBucketMapping('a=c\nb=c\nx=y=z', problems)
    assert.equal(problems.length, 2)
    assert.match(problems[0]?.message ?? '', /restores two buckets into 'c'/)
    assert.match(problems[1]?.message ?? '', /archived-name=target-name/)
  })
})

describe('Storage connection inputs', () => {
  it("defaults the endpoint to <supabase-url>/storage/v1/s3, path style, and makes 'path' optional", () => {
    const inputs = parseBackupInputs(reader(STORAGE_OK), {})
    assert.deepEqual(inputs.patterns, [])
    assert.deepEqual(inputs.storageSource, {
      buckets: { all: false, names: ['avatars', 'uploads'] },
      settings: {
        endpoint: 'https://abcd.supabase.co/storage/v1/s3',
        region: 'eu-central-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'storage-key-id', secretAccessKey: 'storage-secret', sessionToken: undefined }
      }
    })
  })

  it('names each missing input: region, and both halves of the key pair', () => {
    const problems = problemsOf({ ...STORAGE_OK, 'storage-region': '', 'storage-access-key-id': '', 'storage-secret-access-key': '' })
    assert.deepEqual(
      problems.map(problem => problem.input),
      ['storage-region', 'storage-access-key-id', 'storage-secret-access-key']
    )
    assert.match(problems[1]?.message ?? '', /Storage > S3 Configuration > Access keys/)
  })

  it("refuses Storage inputs without 'storage-buckets'", () => {
    const problems = problemsOf({ ...STORAGE_OK, path: 'data', 'storage-buckets': '' })
    assert.deepEqual(
      problems.map(problem => problem.input),
      ['storage-region']
    )
    assert.match(problems[0]?.message ?? '', /'storage-buckets' is empty/)
  })

  it('masks the key pair and the session token', () => {
    const secrets = secretValues(reader({ ...STORAGE_OK, 'storage-session-token': 'a-user-jwt' }))
    for (const secret of ['storage-key-id', 'storage-secret', 'a-user-jwt']) assert.ok(secrets.includes(secret), secret)
  })
})
