// An encrypted backup altered in the store is refused by its own authentication, not only by the
// row's checksum: each tampered copy here has a row with no sha256 to compare. A byte flipped in
// the header, in a middle chunk or in the last chunk, a dropped chunk and a cut-off tail each fail
// with a sentence, and nothing is written: no destination, no temp dir, no parent made.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { access, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { ageKeygen } from '../harness/age.js'
import { actionInputs, backupJob, errorsOf, insertRow, readRow, restoreHook, restoreInputs, setUpTestFile } from '../harness/backup-job.js'

const MiB = 1024 * 1024
/** age's chunk as stored: 64 KiB of plaintext and its 16-byte tag. */
const SEALED_CHUNK = 64 * 1024 + 16
const { svc, bucket, workspace } = await setUpTestFile('tampering', {
  'data/notes.txt': 'hello\n',
  // Incompressible, so the object has a dozen chunks or more in every format.
  'data/random.bin': { size: MiB }
})
const scratch = await mkdtemp(path.join(os.tmpdir(), 'encrypted-tampering-'))
after(() => rm(scratch, { recursive: true, force: true }))
const key = await ageKeygen()

/** An encrypted backup, as the store holds it. */
async function encryptedObject(format: string): Promise<Buffer> {
  const row = await insertRow(svc)
  const job = await backupJob(svc, {
    workspace: workspace.dir,
    inputs: actionInputs(svc, bucket, { 'dispatch-id': row.dispatchId, format, 'encrypt-to': key.recipient })
  })
  assert.equal(job.main.conclusion, 'success', job.main.stdout)
  return svc.s3.getObject(bucket, (await readRow(svc, row.id)).s3_key ?? '')
}

/** Where the payload's first chunk starts: after the header's MAC line and the 16-byte nonce. */
function payloadStart(object: Buffer): number {
  return object.indexOf('\n', object.indexOf('\n--- ') + 1) + 1 + 16
}

function otherLetterAt(object: Buffer, at: number): Buffer {
  const copy = Buffer.from(object)
  copy[at] = copy[at] === 0x41 ? 0x42 : 0x41
  return copy
}

function flipped(object: Buffer, at: number): Buffer {
  const copy = Buffer.from(object)
  copy[at] = (copy[at] ?? 0) ^ 0x01
  return copy
}

/** Restores `body` from a success row that records its size but no sha256; returns the error, after checking nothing was written. */
async function refused(name: string, body: Buffer): Promise<string> {
  const objectKey = `tampered/${randomUUID()}.tar.zst.age`
  await svc.s3.putObject(bucket, objectKey, body)
  const row = await insertRow(svc, { status: 'success', s3_key: objectKey, size_bytes: body.length })
  const destination = path.join(scratch, name, 'inside', 'restored')
  const restore = await restoreHook(
    svc,
    restoreInputs(svc, bucket, { 'backup-id': row.id, path: destination, 'decrypt-identity': key.identity })
  )
  assert.equal(restore.conclusion, 'failure', `${name}: ${restore.stdout}`)
  await assert.rejects(access(path.join(scratch, name)), { code: 'ENOENT' }, `${name}: something was left behind`)
  return errorsOf(restore)
}

describe('a tampered encrypted backup', () => {
  for (const format of ['tar.zst', 'zip'] as const) {
    describe(format, async () => {
      const object = await encryptedObject(format)
      const start = payloadStart(object)
      const chunks = Math.ceil((object.length - start) / SEALED_CHUNK)
      assert.ok(chunks >= 10, `only ${chunks} chunks`)

      it('a byte changed in the header (a stanza, then the MAC) is refused before the download', async () => {
        // Each byte is swapped for another base64 letter, so the header still parses and only the
        // cryptography can tell: flipping a bit could make a character that is not base64 at all.
        const stanzaBody = object.indexOf('\n', object.indexOf('\n-> X25519 ') + 1) + 5
        assert.match(await refused(`${format}-stanza`, otherLetterAt(object, stanzaBody)), /None of the 1 identity in 'decrypt-identity'/)
        const mac = otherLetterAt(object, object.indexOf('\n--- ') + 10)
        assert.match(await refused(`${format}-mac`, mac), /age header of .* fails its MAC: the header was altered/)
      })

      it('a byte flipped in a middle chunk fails its authentication', async () => {
        const middle = Math.floor(chunks / 2)
        assert.match(
          await refused(`${format}-middle`, flipped(object, start + middle * SEALED_CHUNK + 1000)),
          new RegExp(`fails authentication in chunk ${middle + 1} of ${chunks} .*altered, damaged or cut short`)
        )
      })

      it('a byte flipped in the last chunk fails its authentication', async () => {
        assert.match(await refused(`${format}-last`, flipped(object, object.length - 3)), /fails authentication in its last chunk/)
      })

      it('a chunk cut out of the middle is refused', async () => {
        const at = start + 3 * SEALED_CHUNK
        const dropped = Buffer.concat([object.subarray(0, at), object.subarray(at + SEALED_CHUNK)])
        // tar reads front to back and meets the gap first; zip reads its central directory at the end first.
        const where = format === 'zip' ? /fails authentication in chunk \d+ of \d+/ : /fails authentication in chunk 4 of/
        assert.match(await refused(`${format}-dropped`, dropped), where)
      })

      it('an object cut short at a chunk boundary or inside a chunk is refused', async () => {
        // The new last chunk was sealed as a middle one: its last-chunk flag does not match.
        const atBoundary = object.subarray(0, start + (chunks - 1) * SEALED_CHUNK)
        assert.match(await refused(`${format}-cut-boundary`, atBoundary), /fails authentication in its last chunk/)
        const inside = object.subarray(0, start + (chunks - 1) * SEALED_CHUNK + 8)
        assert.match(await refused(`${format}-cut-inside`, inside), /ends in the middle of an age chunk .*cut short/)
      })
    })
  }
})
