// The presigner of the backup-download function (supabase/functions/_shared/presign.ts), held to
// AWS's published examples, and to the AWS SDK's own SigV4 signer (@smithy/signature-v4, which
// @aws-sdk/client-s3 signs with) where the examples stop: keys and file names that need encoding,
// response overrides, session tokens, path-style endpoints. No services needed.
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { SignatureV4 } from '@smithy/signature-v4'
import {
  encodeRfc3986,
  presignGetObject,
  signingKey,
  type S3Credentials,
  type S3Location
} from '../../supabase/functions/_shared/presign.js'
import { contentDisposition, fileNameOf } from '../../supabase/functions/backup-download/download-name.js'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

describe("AWS's published examples", () => {
  it('derives the signing key of "Derive a signing key" (20150830, us-east-1, iam)', async () => {
    const key = await signingKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20150830', 'us-east-1', 'iam')
    assert.equal(hex(key), 'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9')
  })

  it('signs the presigned GET of "Authenticating Requests: Using Query Parameters" (examplebucket/test.txt, 86400 s)', async () => {
    const { url, expiresAt } = await presignGetObject(
      { endpoint: 'https://s3.amazonaws.com', bucket: 'examplebucket', region: 'us-east-1', forcePathStyle: false },
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      'test.txt',
      { expiresInSeconds: 86400, now: new Date('2013-05-24T00:00:00Z') }
    )
    assert.equal(
      url,
      'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
        '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
        '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
    )
    assert.equal(expiresAt.toISOString(), '2013-05-25T00:00:00.000Z')
  })
})

/** SHA-256 and HMAC-SHA256 as the SDK's signer takes them (its Checksum interface), on node:crypto. */
class NodeSha256 {
  private readonly hash
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret))
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBuffer(data))
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()))
  }
  reset(): void {}
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

/** The URL the SDK presigns for the same object, as @aws-sdk/s3-request-presigner asks it to (UNSIGNED-PAYLOAD, only host signed). */
async function sdkPresign(
  location: S3Location,
  credentials: S3Credentials,
  key: string,
  query: Record<string, string>,
  now: Date,
  expiresIn: number
): Promise<string> {
  const mine = new URL((await presignGetObject(location, credentials, key, { expiresInSeconds: expiresIn, now, query })).url)
  const signer = new SignatureV4({ credentials, region: location.region, service: 's3', sha256: NodeSha256, uriEscapePath: false })
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: mine.protocol,
      hostname: mine.hostname,
      port: mine.port ? Number(mine.port) : undefined,
      // The S3 client encodes the key this way before signing (extendedEncodeURIComponent per segment).
      path: mine.pathname,
      query: { ...query },
      headers: { host: mine.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }
    },
    {
      signingDate: now,
      expiresIn,
      unsignableHeaders: new Set(['x-amz-content-sha256']),
      unhoistableHeaders: new Set(['x-amz-content-sha256'])
    }
  )
  const search = Object.entries(signed.query ?? {})
    .map(([name, value]) => [encodeRfc3986(name), encodeRfc3986(String(value))] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
  return `${mine.origin}${mine.pathname}?${search.join('&')}`
}

/** Our URL with its signature moved to the sorted place, to compare with the SDK's query. */
function sortedQuery(url: string): string {
  const [base = '', search = ''] = url.split('?')
  return `${base}?${search
    .split('&')
    .sort((a, b) => {
      const [x = '', y = ''] = [a.split('=')[0], b.split('=')[0]]
      return x < y ? -1 : x > y ? 1 : 0
    })
    .join('&')}`
}

describe("the AWS SDK's signer agrees where the examples stop", () => {
  const credentials: S3Credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
  const now = new Date('2026-03-14T15:09:26.535Z')
  const cases: [string, S3Location, S3Credentials, string][] = [
    [
      'a dated key under the default AWS endpoint (virtual-hosted)',
      { endpoint: undefined, bucket: 'my-backups', region: 'eu-central-1', forcePathStyle: false },
      credentials,
      'backups/2026/03/14/backup-20260314T150926Z.zip'
    ],
    [
      'a key with spaces, quotes, parentheses, a star and non-ASCII, path-style on a local endpoint with a port',
      { endpoint: 'http://127.0.0.1:9000', bucket: 'backups', region: 'us-east-1', forcePathStyle: true },
      credentials,
      "backups/Ünïcode (copy) 'it's'*!/naïve café ✓ 100%+1=2.tar.zst"
    ],
    [
      'temporary credentials: the session token travels signed in the query',
      { endpoint: 'https://account.r2.cloudflarestorage.com', bucket: 'backups', region: 'auto', forcePathStyle: true },
      { ...credentials, sessionToken: 'IQoJb3JpZ2luX2VjE/+token==' },
      'backups/a.zip'
    ],
    [
      'a bucket with dots is addressed path-style (a dotted name breaks TLS on a virtual host)',
      { endpoint: undefined, bucket: 'backups.example.com', region: 'us-west-2', forcePathStyle: false },
      credentials,
      'x/y.zip'
    ]
  ]
  for (const [title, location, creds, key] of cases) {
    it(title, async () => {
      const query = { 'response-content-disposition': contentDisposition(fileNameOf(key)) }
      const { url } = await presignGetObject(location, creds, key, { expiresInSeconds: 300, now, query })
      assert.equal(sortedQuery(url), await sdkPresign(location, creds, key, query, now, 300))
      assert.ok(url.includes('X-Amz-SignedHeaders=host&'), url)
    })
  }

  it('refuses a lifetime outside 1 s to 7 days, as S3 would', async () => {
    const location: S3Location = { endpoint: undefined, bucket: 'b-b', region: 'us-east-1', forcePathStyle: false }
    for (const seconds of [0, -1, 1.5, 7 * 24 * 3600 + 1]) {
      await assert.rejects(presignGetObject(location, credentials, 'k', { expiresInSeconds: seconds }), /lives 1 to 604800 seconds/)
    }
  })
})

describe('the file name the browser saves (Content-Disposition, RFC 6266)', () => {
  it('is the last part of the key, quoted as is when it is plain ASCII', () => {
    assert.equal(fileNameOf('backups/2026/01/02/backup-20260102T030405Z.zip'), 'backup-20260102T030405Z.zip')
    assert.equal(contentDisposition('backup-1.tar.zst'), 'attachment; filename="backup-1.tar.zst"')
    assert.equal(fileNameOf('backups/'), 'backups')
    assert.equal(fileNameOf(''), 'backup')
  })

  it('adds filename* in UTF-8 (RFC 5987) for other names, with an ASCII fallback that cannot break the quotes', () => {
    assert.equal(
      contentDisposition('sauvegarde "été".zip'),
      `attachment; filename="sauvegarde __t__.zip"; filename*=UTF-8''sauvegarde%20%22%C3%A9t%C3%A9%22.zip`
    )
    assert.equal(contentDisposition('a\\b\n.zip'), `attachment; filename="a_b_.zip"; filename*=UTF-8''a%5Cb%0A.zip`)
  })
})
