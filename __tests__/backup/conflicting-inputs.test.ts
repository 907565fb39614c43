// Every pair of inputs that conflict, in both ledger modes: the step fails naming the input, and
// the row, which the step can still identify and reach, ends failed with that message. Nothing
// is stored and no other row changes.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import {
  LEDGER_MODES,
  actionInputs,
  backupJob,
  errorsOf,
  insertRow,
  readRow,
  rowCount,
  setUpTestFile,
  type LedgerMode
} from '../harness/backup-job.js'

const { svc, bucket, workspace } = await setUpTestFile('conflicts', { 'data/file.txt': 'content\n', 'database/notes.txt': 'mine\n' })

/** Two inputs that cannot go together, and the ledger modes where the pair can be set. */
interface Conflict {
  pair: string
  /** Over the valid inputs of the mode. */
  inputs: Record<string, string>
  message: RegExp
  modes: readonly LedgerMode[]
}

const conflicts: Conflict[] = [
  {
    pair: 'supabase-key with backup-api-key',
    inputs: { 'supabase-key': 'sb_secret_not_wanted_here_0123456789' },
    message: /Input 'supabase-key': must be empty when 'backup-api-key' is set/,
    modes: ['function']
  },
  {
    pair: 'table with backup-api-key',
    inputs: { table: 'backup_history_elsewhere' },
    message: /Input 'table': does not apply with 'backup-api-key'/,
    modes: ['function']
  },
  {
    pair: 'update-function without backup-api-key',
    inputs: { 'update-function': 'my-update-backup' },
    message: /Input 'update-function': only applies with 'backup-api-key'/,
    modes: ['table']
  },
  {
    pair: "create-row: true with the dispatch-id of the app's row",
    inputs: { 'create-row': 'true' },
    message: /Input 'create-row': is true, but a row with dispatch_id .* already exists/,
    modes: LEDGER_MODES
  },
  {
    pair: 'create-row not a boolean with a dispatch-id',
    inputs: { 'create-row': 'sometimes' },
    message: /Input 'create-row': must be true or false/,
    modes: LEDGER_MODES
  },
  {
    pair: "compression-level with format 'tar'",
    inputs: { format: 'tar', 'compression-level': '6' },
    message: /Input 'compression-level': does not apply to format 'tar'/,
    modes: LEDGER_MODES
  },
  {
    pair: 'sse-kms-key-id without sse: aws:kms',
    inputs: { sse: 'AES256', 'sse-kms-key-id': 'alias/backups' },
    message: /Input 'sse-kms-key-id': needs 'sse: aws:kms'/,
    modes: LEDGER_MODES
  },
  {
    pair: 'aws-session-token without the key pair',
    inputs: { 'aws-access-key-id': '', 'aws-secret-access-key': '', 'aws-session-token': 'FwoGZXIvYXdzEBAaDOPMaTIrZ' },
    message: /Input 'aws-session-token': needs 'aws-access-key-id' and 'aws-secret-access-key' as well/,
    modes: LEDGER_MODES
  },
  {
    pair: 'aws-access-key-id without aws-secret-access-key',
    inputs: { 'aws-secret-access-key': '' },
    message: /Input 'aws-secret-access-key': is required when 'aws-access-key-id' is set/,
    modes: LEDGER_MODES
  },
  {
    pair: 'aws-secret-access-key without aws-access-key-id',
    inputs: { 'aws-access-key-id': '' },
    message: /Input 'aws-access-key-id': is required when 'aws-secret-access-key' is set/,
    modes: LEDGER_MODES
  },
  {
    pair: 'a path under database/ with database-url, whose part the archive keeps there',
    inputs: { path: 'data\ndatabase', 'database-url': svc.env.DATABASE_URL },
    message: /Input 'path': matched database(\/notes\.txt)?, but the archive keeps the 'database-url' part under database\//,
    modes: ['table']
  },
  {
    pair: 'no path and no database-url',
    inputs: { path: '' },
    message: /Input 'path': is required: .* or set 'database-url'/,
    modes: LEDGER_MODES
  }
]

for (const conflict of conflicts) {
  for (const mode of conflict.modes) {
    it(`${mode}: ${conflict.pair}: the row is failed naming the input`, async () => {
      const row = await insertRow(svc)
      const rows = await rowCount(svc)
      const job = await backupJob(svc, {
        workspace: workspace.dir,
        inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, ...conflict.inputs }, mode)
      })
      assert.equal(job.main.exitCode, 1, job.main.stdout)
      assert.match(errorsOf(job.main), conflict.message)
      const after = await readRow(svc, row.id)
      assert.equal(after.status, 'failed', `${conflict.pair} left the row ${after.status}`)
      assert.match(after.error_text ?? '', conflict.message)
      assert.equal(job.post?.exitCode, 0, 'post finds the row finalized')
      assert.equal(await rowCount(svc), rows, 'no row was created')
      assert.deepEqual(await svc.s3.objects(bucket), [], 'nothing was stored')
    })
  }
}
