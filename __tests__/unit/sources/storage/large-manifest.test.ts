// A manifest larger than one archive piece (READ_CHUNK) is written whole: 12,000 objects make ~2.6 MiB
// of manifest, which once went into a zip as one piece and was cut to the zip's job buffer (2 MiB).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { READ_CHUNK } from '../../../../src/archive/entry.js'
import { zip } from '../../../../src/archive/zip.js'
import { tar } from '../../../../src/archive/tar.js'
import { StorageSource } from '../../../../src/sources/storage/source.js'

const OBJECTS = 12_000

/** Answers ListObjectsV2 in pages of 1000 and GetObject with a small body: the S3 client as the source uses it. */
const client = {
  async send(command: { constructor: { name: string }; input: { ContinuationToken?: string; Key?: string } }) {
    if (command.constructor.name === 'ListObjectsV2Command') {
      const start = Number(command.input.ContinuationToken ?? 0)
      const end = Math.min(OBJECTS, start + 1000)
      return {
        Contents: Array.from({ length: end - start }, (_, k) => ({ Key: `folder/object ${start + k}.txt`, Size: 2, ETag: '"e"' })),
        IsTruncated: end < OBJECTS,
        NextContinuationToken: String(end)
      }
    }
    return {
      ContentLength: 2,
      ContentType: 'text/plain',
      Metadata: { n: command.input.Key ?? '' },
      ETag: '"e"',
      Body: Readable.from([Buffer.from('ok')])
    }
  }
}

async function archive(format: 'zip' | 'tar'): Promise<Buffer> {
  const source = new StorageSource(
    { client: client as never, buckets: ['b'], endpoint: '' },
    format === 'tar',
    new AbortController().signal,
    () => {}
  )
  const index = { entry: () => assert.fail('storage entries are never looked up'), type: () => 'file' as const }
  const pieces: Buffer[] = []
  for await (const piece of format === 'zip' ? zip(source.chunks(), 6, index) : tar(source.chunks())) pieces.push(Buffer.from(piece))
  return Buffer.concat(pieces)
}

describe('storage manifest in the archive', () => {
  for (const format of ['zip', 'tar'] as const) {
    it(`${format}: a manifest of several pieces comes out whole`, async () => {
      const directory = await mkdtemp(path.join(os.tmpdir(), 'storage-manifest-'))
      try {
        const file = path.join(directory, `archive.${format}`)
        await writeFile(file, await archive(format))
        const text = execFileSync(
          format === 'zip' ? 'unzip' : 'tar',
          format === 'zip' ? ['-p', file, 'storage/manifest.json'] : ['-xOf', file, 'storage/manifest.json'],
          {
            maxBuffer: 64 * 1024 * 1024
          }
        )
        assert.ok(text.length > 2 * READ_CHUNK, `${text.length} bytes`)
        const manifest = JSON.parse(text.toString('utf8')) as { objects: { key: string; metadata: Record<string, string> }[] }
        assert.equal(manifest.objects.length, OBJECTS)
        assert.equal(manifest.objects.at(-1)?.key, `folder/object ${OBJECTS - 1}.txt`)
      } finally {
        await rm(directory, { recursive: true, force: true })
      }
    })
  }
})
