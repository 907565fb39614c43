// s3rver 3.7.1, patched to behave like S3 where our code depends on it. s3rver is a Koa app:
// one middleware unshifted onto `server.middleware` before `run()` sees every request first.
// What it adds (see /work/shared/test-services.md for the gaps):
//   - SigV4 signatures are really verified (s3rver only checks the key id exists), in the
//     Authorization header and in presigned URLs, whose expiry is enforced as S3 does;
//     anonymous requests are refused like on a private bucket.
//   - AbortMultipartUpload, ListMultipartUploads, NoSuchUpload on unknown uploads.
//   - If-None-Match: * on PutObject / CompleteMultipartUpload → 412 PreconditionFailed.
//   - CompleteMultipartUpload validates parts (InvalidPart, InvalidPartOrder, EntityTooSmall)
//     and returns S3's multipart ETag ("md5-of-part-md5s-N").
//   - aws-chunked bodies (the SDK's flexible checksums, CRC trailer) are decoded, CRC32 verified.
//   - S3 additional checksums: CreateMultipartUpload's x-amz-checksum-algorithm CRC32 (type FULL_OBJECT or
//     COMPOSITE) is echoed and kept; each part's x-amz-checksum-crc32 and Content-MD5 are verified (400
//     BadDigest); CompleteMultipartUpload checks the full-object CRC32 it is sent and keeps the object's;
//     Head/GetObject with x-amz-checksum-mode: ENABLED return it with x-amz-checksum-type.
//   - x-amz-tagging, x-amz-server-side-encryption(-aws-kms-key-id) on CreateMultipartUpload are
//     kept: tags for GetObjectTagging, SSE headers on Head/GetObject, and with SSE-KMS part and
//     object ETags that are not MD5 digests of the data, as on S3.
//   - a control API under /__control/ (stats, long-poll on uploaded bytes, fault injection).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { promises as fs } from 'node:fs'
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Readable, Transform, pipeline } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import zlib from 'node:zlib'
import { crc32Combine } from '../../src/store/checksums.js'
import { FaultSwitch } from './faults.js'

const require = createRequire(import.meta.url)

// ---- minimal typings for the parts of s3rver/Koa we touch (s3rver ships no types) ----------

interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string
  getBucket(bucket: string): Promise<unknown>
  existsObject(bucket: string, key: string): Promise<boolean>
  deleteObject(bucket: string, key: string): Promise<void>
}

interface KoaContext {
  req: IncomingMessage
  res: ServerResponse
  method: string
  url: string
  path: string
  query: Record<string, string | string[] | undefined>
  headers: IncomingHttpHeaders
  status: number
  body: unknown
  type: string
  respond: boolean
  store: FilesystemStore
  set(name: string, value: string): void
}

type Next = () => Promise<void>
type Middleware = (ctx: KoaContext, next: Next) => Promise<void>

interface S3rverInstance {
  middleware: Middleware[]
  store: FilesystemStore
  run(): Promise<{ port: number; address: string }>
  close(): Promise<void>
}

type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance
interface S3ErrorInstance extends Error {
  status: number
}
type S3ErrorCtor = new (code: string, message?: string, detail?: Record<string, string | number>) => S3ErrorInstance

const S3rver = require('s3rver') as S3rverCtor
const S3Error = require('s3rver/lib/models/error') as S3ErrorCtor
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account') as {
  DUMMY_ACCOUNT: { accessKeys: Map<string, string>; createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void }
}

// ---- public types ---------------------------------------------------------------------------

export type S3Op =
  | 'ListBuckets'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'HeadBucket'
  | 'ListObjects'
  | 'ListObjectsV2'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'Other'

/**
 * Data faults, for the checks of the bytes: corrupt-part flips a byte of an UploadPart body before the
 * store checks it; wrong-checksum makes Head/GetObject report another CRC32 than the object's;
 * corrupt-object flips a byte of the stored object right after CompleteMultipartUpload (damage the
 * store does not notice); no-checksums makes the store ignore S3's additional checksums (an older
 * store); reject-checksums refuses every request carrying them with 400 InvalidArgument.
 */
export const DATA_FAULTS = ['corrupt-part', 'wrong-checksum', 'corrupt-object', 'no-checksums', 'reject-checksums'] as const
export type DataFault = (typeof DATA_FAULTS)[number]

export interface S3Fault {
  /** lose-answer: the request is carried out, then the connection is dropped instead of answering. */
  mode: 'none' | 'status' | 'reset' | 'slow' | 'hang' | 'lose-answer' | DataFault
  /** Only requests of this operation (or these operations) are faulted; default all. */
  op?: S3Op | S3Op[]
  /** mode "status": HTTP status; 503 answers SlowDown, others InternalError-style XML. */
  status?: number
  /** mode "slow": delay before the request is processed. */
  delayMs?: number
  /** mode "slow": throttle request bodies (PutObject/UploadPart) to this rate. */
  bytesPerSec?: number
  /** How many matching requests are faulted (default unlimited). */
  count?: number
  /** How many matching requests pass untouched before the fault applies (default 0). */
  skip?: number
}

export interface S3Stats {
  /** Payload bytes received by PutObject and UploadPart bodies (decoded, i.e. without aws-chunked framing). */
  partBytes: number
  /** PutObject/UploadPart requests that carried a flexible checksum (x-amz-checksum-crc32 header or trailer). */
  checksummed: number
  /** PutObject/UploadPart requests whose signature covers the payload's SHA-256 (not UNSIGNED-PAYLOAD), which is checked. */
  signed: number
  parts: number
  puts: number
  completes: number
  /** CreateMultipartUpload requests answered (also those whose client went away). */
  creates: number
  aborts: number
  requests: number
  faulted: number
  /** TCP connections clients opened: S3 keeps them alive, so a multipart upload needs a few, not one per part. */
  connections: number
}

export interface S3Options {
  directory: string
  accessKeyId: string
  secretAccessKey: string
  buckets: string[]
  host?: string
  port?: number
}

const MIN_PART_SIZE = 5 * 1024 * 1024
const CHECKSUM_HEADERS = ['x-amz-checksum-algorithm', 'x-amz-checksum-type', 'x-amz-checksum-crc32', 'x-amz-sdk-checksum-algorithm']

/** What UploadPart keeps next to a part: the CRC32 of the bytes received, and how many. */
interface PartCrc32 {
  crc32: number
  size: number
}

/** The CRC32 an object keeps (S3 additional checksums), next to its s3rver files. */
interface StoredChecksum {
  crc32: string
  type: 'FULL_OBJECT' | 'COMPOSITE'
}

const crc32Buffer = (value: number): Buffer => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value >>> 0)
  return bytes
}
const crc32Base64 = (value: number): string => crc32Buffer(value).toString('base64')
const UPLOAD_ID_RE = /^[0-9a-f]{1,64}$/i

// ---- helpers ----------------------------------------------------------------------------------

const xmlEscape = (s: string): string =>
  s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c)

const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())

const sha256hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest()

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

function s3Error(code: string, message: string, detail: Record<string, string | number> = {}, status?: number): S3ErrorInstance {
  const err = new S3Error(code, message, detail)
  if (status !== undefined) err.status = status
  return err
}

const noSuchUpload = (uploadId: string): S3ErrorInstance =>
  s3Error(
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { UploadId: uploadId }
  )

/** Read and discard a request body, so an early error answer does not race the client's upload. */
async function drain(req: Readable): Promise<void> {
  try {
    for await (const _ of req) void _
  } catch {
    /* client went away: nothing to answer anyway */
  }
}

async function readAll(req: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

interface Target {
  bucket?: string
  key?: string
}

function parseTarget(rawUrl: string): Target {
  const rawPath = rawUrl.split('?')[0] ?? '/'
  const m = /^\/([^/]+)(?:\/(.*))?$/.exec(rawPath)
  if (!m) return {}
  const bucket = decodeURIComponent(m[1] ?? '')
  const key = m[2] !== undefined && m[2] !== '' ? decodeURIComponent(m[2]) : undefined
  return key === undefined ? { bucket } : { bucket, key }
}

export function classify(method: string, t: Target, rawQuery: Record<string, unknown>, headers: IncomingHttpHeaders): S3Op {
  // The JS SDK tags requests with ?x-id=<Operation>; it carries no meaning for S3 routing.
  const query = Object.fromEntries(Object.entries(rawQuery).filter(([k]) => k !== 'x-id'))
  const has = (k: string): boolean => k in query
  if (!t.bucket) return method === 'GET' ? 'ListBuckets' : 'Other'
  if (t.key === undefined) {
    if (method === 'PUT' && Object.keys(query).length === 0) return 'CreateBucket'
    if (method === 'DELETE' && Object.keys(query).length === 0) return 'DeleteBucket'
    if (method === 'HEAD') return 'HeadBucket'
    if (method === 'GET' && has('uploads')) return 'ListMultipartUploads'
    if (method === 'GET' && query['list-type'] === '2') return 'ListObjectsV2'
    if (method === 'GET' && Object.keys(query).every(k => ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'].includes(k)))
      return 'ListObjects'
    if (method === 'POST' && has('delete')) return 'DeleteObjects'
    return 'Other'
  }
  switch (method) {
    case 'PUT':
      if (has('uploadId')) return 'UploadPart'
      if (Object.keys(query).length === 0) return 'x-amz-copy-source' in headers ? 'CopyObject' : 'PutObject'
      return 'Other'
    case 'POST':
      if (has('uploads')) return 'CreateMultipartUpload'
      if (has('uploadId')) return 'CompleteMultipartUpload'
      return 'Other'
    case 'DELETE':
      return has('uploadId') ? 'AbortMultipartUpload' : Object.keys(query).length === 0 ? 'DeleteObject' : 'Other'
    case 'GET':
      return Object.keys(query).every(k => k.startsWith('response-') || k === 'partNumber' || k === 'versionId') ? 'GetObject' : 'Other'
    case 'HEAD':
      return 'HeadObject'
    default:
      return 'Other'
  }
}

// ---- SigV4 ------------------------------------------------------------------------------------

/**
 * Verify an `Authorization: AWS4-HMAC-SHA256 ...` header the way S3 does: the canonical URI is
 * the path exactly as sent (S3 does not double-encode or normalize), the payload hash is the
 * x-amz-content-sha256 header as-is. Presigned URLs: verifyPresignedSigV4. SigV2 stays with s3rver.
 */
export function verifySigV4(
  method: string,
  rawUrl: string,
  headers: IncomingHttpHeaders,
  secretFor: (id: string) => string | undefined
): void {
  const auth = headerValue(headers, 'authorization') ?? ''
  if (!auth.startsWith('AWS4-HMAC-SHA256 ')) return
  const fields = new Map<string, string>()
  for (const part of auth.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = fields.get('Credential')
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (!credential || !signedHeaders || !signature) {
    throw s3Error(
      'AuthorizationHeaderMalformed',
      'The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.'
    )
  }
  const [accessKeyId = '', ...scopeParts] = credential.split('/')
  const secret = secretFor(accessKeyId)
  if (secret === undefined) {
    throw s3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId
    })
  }
  const payloadHash = headerValue(headers, 'x-amz-content-sha256')
  if (payloadHash === undefined) throw s3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256')
  const amzDate = headerValue(headers, 'x-amz-date') ?? ''

  const [rawPath = '/', rawQuery = ''] = splitOnce(rawUrl, '?')
  const request = { method, rawPath, query: queryPairs(rawQuery), headers, signedHeaders, payloadHash }
  checkSignature(request, { accessKeyId, secret, scopeParts, amzDate, signature })
}

/**
 * Verify a presigned URL (`X-Amz-Algorithm=AWS4-HMAC-SHA256` in the query) as S3 does: a lifetime
 * of 1 s to 7 days; past X-Amz-Date + X-Amz-Expires, 403 AccessDenied "Request has expired"; then
 * the signature, over the query without X-Amz-Signature and the payload hash UNSIGNED-PAYLOAD
 * (unless the query signs one). Response overrides (`response-content-disposition`) are signed too.
 */
export function verifyPresignedSigV4(
  method: string,
  rawUrl: string,
  headers: IncomingHttpHeaders,
  secretFor: (id: string) => string | undefined,
  now = Date.now()
): void {
  const [rawPath = '/', rawQuery = ''] = splitOnce(rawUrl, '?')
  const pairs = queryPairs(rawQuery)
  const param = (name: string): string | undefined => pairs.find(([k]) => k === name)?.[1]
  const [credential, amzDate, expires, signedHeaders, signature] = [
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-SignedHeaders',
    'X-Amz-Signature'
  ].map(param)
  if (param('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !credential || !amzDate || !expires || !signedHeaders || !signature) {
    throw s3Error(
      'AuthorizationQueryParametersError',
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.'
    )
  }
  const lifetime = Number(expires)
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > 604800) {
    throw s3Error(
      'AuthorizationQueryParametersError',
      'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds'
    )
  }
  const signedAt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (!signedAt) throw s3Error('AuthorizationQueryParametersError', `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
  const [, y, mo, d, h, mi, sec] = signedAt.map(Number) as number[]
  const expiresAt = Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, sec) + lifetime * 1000
  if (now > expiresAt) {
    const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
    throw s3Error('AccessDenied', 'Request has expired', { 'X-Amz-Expires': expires, Expires: iso(expiresAt), ServerTime: iso(now) })
  }
  const [accessKeyId = '', ...scopeParts] = credential.split('/')
  const secret = secretFor(accessKeyId)
  if (secret === undefined) {
    throw s3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId
    })
  }
  const query = pairs.filter(([k]) => k !== 'X-Amz-Signature')
  const payloadHash = param('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD'
  checkSignature({ method, rawPath, query, headers, signedHeaders, payloadHash }, { accessKeyId, secret, scopeParts, amzDate, signature })
}

/** The query's parameters, decoded, in the order sent. */
function queryPairs(rawQuery: string): [string, string][] {
  return rawQuery
    .split('&')
    .filter(p => p !== '')
    .map(p => {
      const [k = '', v = ''] = splitOnce(p, '=')
      return [safeDecode(k), safeDecode(v)]
    })
}

/** SigV4's canonical request, string to sign and signature, compared in constant time; SignatureDoesNotMatch otherwise. */
function checkSignature(
  request: {
    method: string
    rawPath: string
    query: [string, string][]
    headers: IncomingHttpHeaders
    signedHeaders: string
    payloadHash: string
  },
  signer: { accessKeyId: string; secret: string; scopeParts: string[]; amzDate: string; signature: string }
): void {
  const { method, rawPath, headers, signedHeaders, payloadHash } = request
  const canonicalQuery = request.query
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const names = signedHeaders.split(';')
  const canonicalHeaders = names.map(n => `${n}:${(headerValue(headers, n) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('')
  const canonicalRequest = [method, rawPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n')
  const { accessKeyId, secret, scopeParts, amzDate, signature } = signer
  const scope = scopeParts.join('/')
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n')

  const [date = '', region = '', service = '', terminator = ''] = scopeParts
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), terminator)
  const expected = createHmac('sha256', key).update(stringToSign).digest()
  const given = Buffer.from(signature, 'hex')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw s3Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      {
        AWSAccessKeyId: accessKeyId,
        StringToSign: stringToSign,
        SignatureProvided: signature,
        CanonicalRequest: canonicalRequest
      }
    )
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep)
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)]
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

// ---- aws-chunked decoding -----------------------------------------------------------------------

/**
 * Decodes `Content-Encoding: aws-chunked` bodies: `<hex>[;chunk-signature=..]\r\n<data>\r\n ...
 * 0\r\n<trailer-name>:<value>\r\n\r\n`. Chunk signatures are not verified (the SDK's default is
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER); trailers are collected for checksum verification.
 */
class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>()
  private buf: Buffer = Buffer.alloc(0)
  private remaining = 0 // data bytes left in the current chunk
  private state: 'size' | 'data' | 'crlf' | 'trailer' | 'done' = 'size'

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    try {
      this.parse()
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    cb(this.state === 'done' || (this.state === 'trailer' && this.buf.length === 0) ? null : new Error('truncated aws-chunked body'))
  }

  private parse(): void {
    for (;;) {
      if (this.state === 'data') {
        if (this.buf.length === 0) return
        const n = Math.min(this.remaining, this.buf.length)
        this.push(this.buf.subarray(0, n))
        this.buf = this.buf.subarray(n)
        this.remaining -= n
        if (this.remaining === 0) this.state = 'crlf'
        continue
      }
      if (this.state === 'done') {
        this.buf = Buffer.alloc(0)
        return
      }
      const eol = this.buf.indexOf('\r\n')
      if (eol < 0) return
      const line = this.buf.subarray(0, eol).toString('latin1')
      this.buf = this.buf.subarray(eol + 2)
      if (this.state === 'crlf') {
        if (line !== '') throw new Error('malformed aws-chunked body (missing CRLF after chunk)')
        this.state = 'size'
      } else if (this.state === 'size') {
        const size = parseInt(line.split(';')[0] ?? '', 16)
        if (!Number.isFinite(size)) throw new Error('malformed aws-chunked chunk size')
        if (size === 0) this.state = 'trailer'
        else {
          this.remaining = size
          this.state = 'data'
        }
      } else if (this.state === 'trailer') {
        if (line === '') this.state = 'done'
        else {
          const [name = '', value = ''] = splitOnce(line, ':')
          this.trailers.set(name.trim().toLowerCase(), value.trim())
        }
      }
    }
  }
}

// ---- the patched server -------------------------------------------------------------------------

export class S3Server {
  private readonly s3rver: S3rverInstance
  private readonly faults = new FaultSwitch<S3Fault>({ mode: 'none' })
  private waiters: Array<{ n: number; resolve: () => void }> = []
  private stats: S3Stats = S3Server.emptyStats()

  constructor(opts: S3Options) {
    // Only the generated key pair is valid: the well-known S3RVER/S3RVER pair is revoked.
    DUMMY_ACCOUNT.revokeAccessKey('S3RVER')
    DUMMY_ACCOUNT.createKeyPair(opts.accessKeyId, opts.secretAccessKey)
    this.s3rver = new S3rver({
      address: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      directory: opts.directory,
      silent: true,
      vhostBuckets: false,
      configureBuckets: opts.buckets.map(name => ({ name }))
    })
    this.s3rver.middleware.unshift((ctx, next) => this.handle(ctx, next))
  }

  private static emptyStats(): S3Stats {
    return {
      partBytes: 0,
      checksummed: 0,
      signed: 0,
      parts: 0,
      puts: 0,
      completes: 0,
      creates: 0,
      aborts: 0,
      requests: 0,
      faulted: 0,
      connections: 0
    }
  }

  async listen(): Promise<number> {
    const addr = await this.s3rver.run()
    ;(this.s3rver as unknown as { httpServer: Server }).httpServer.on('connection', () => (this.stats.connections += 1))
    return addr.port
  }

  async close(): Promise<void> {
    this.faults.set({ mode: 'none' })
    await this.s3rver.close()
  }

  private addBytes(n: number): void {
    this.stats.partBytes += n
    const ready = this.waiters.filter(w => this.stats.partBytes >= w.n)
    this.waiters = this.waiters.filter(w => this.stats.partBytes < w.n)
    for (const w of ready) w.resolve()
  }

  private async handle(ctx: KoaContext, next: Next): Promise<void> {
    if (ctx.path.startsWith('/__control/')) return this.control(ctx)
    this.stats.requests += 1

    const target = parseTarget(ctx.url)
    const op = classify(ctx.method, target, ctx.query, ctx.headers)

    const fault = this.faults.take(f => f.op === undefined || (Array.isArray(f.op) ? f.op : [f.op]).includes(op))
    if (fault) this.stats.faulted += 1
    let bytesPerSec: number | undefined
    const dataFault = fault && (DATA_FAULTS as readonly string[]).includes(fault.mode) ? (fault.mode as DataFault) : undefined
    if (dataFault === 'reject-checksums' && CHECKSUM_HEADERS.some(name => name in ctx.headers)) {
      await drain(ctx.req)
      throw s3Error('InvalidArgument', 'x-amz-checksum-* headers are not supported by this store')
    }
    if (fault) {
      switch (fault.mode) {
        case 'reset':
          ctx.req.socket.destroy()
          ctx.respond = false
          return
        case 'status': {
          await drain(ctx.req)
          const status = fault.status ?? 503
          if (status === 503) throw s3Error('SlowDown', 'Please reduce your request rate.', {}, 503)
          if (status >= 500) throw s3Error('InternalError', 'We encountered an internal error. Please try again.', {}, status)
          throw s3Error('InvalidRequest', `Injected fault (HTTP ${status})`, {}, status)
        }
        case 'slow':
          if (fault.delayMs) await new Promise(r => setTimeout(r, fault.delayMs))
          bytesPerSec = fault.bytesPerSec
          break
        case 'hang':
          await this.faults.hang()
          if (ctx.req.socket.destroyed) {
            ctx.respond = false
            return
          }
          break
      }
    }

    // Authentication: real SigV4 check; anonymous access refused (buckets are private on S3).
    const hasQueryAuth = 'X-Amz-Algorithm' in ctx.query || 'Signature' in ctx.query
    if (!ctx.headers.authorization && !hasQueryAuth) {
      await drain(ctx.req)
      throw s3Error('AccessDenied', 'Access Denied')
    }
    try {
      const secretFor = (id: string): string | undefined => DUMMY_ACCOUNT.accessKeys.get(id)
      if ('X-Amz-Algorithm' in ctx.query) verifyPresignedSigV4(ctx.method, ctx.url, ctx.headers, secretFor)
      else verifySigV4(ctx.method, ctx.url, ctx.headers, secretFor)
    } catch (err) {
      await drain(ctx.req)
      throw err
    }

    // An older store: it never looks at the checksum headers (they were signed, so only now).
    if (dataFault === 'no-checksums') for (const name of CHECKSUM_HEADERS) delete ctx.headers[name]
    await this.dispatch(ctx, next, op, target, bytesPerSec, dataFault)
    if (fault?.mode === 'lose-answer') {
      ctx.respond = false
      ctx.req.socket.destroy()
    }
  }

  private async dispatch(
    ctx: KoaContext,
    next: Next,
    op: S3Op,
    target: Target,
    bytesPerSec: number | undefined,
    dataFault: DataFault | undefined
  ): Promise<void> {
    const { bucket, key } = target
    switch (op) {
      case 'AbortMultipartUpload':
        return this.abort(ctx, bucket ?? '', key ?? '')
      case 'ListMultipartUploads':
        return this.listUploads(ctx, bucket ?? '')
      case 'PutObject':
      case 'UploadPart':
        return this.upload(ctx, next, op, bucket ?? '', key ?? '', bytesPerSec, dataFault === 'corrupt-part')
      case 'CompleteMultipartUpload':
        return this.complete(ctx, next, bucket ?? '', key ?? '', dataFault === 'corrupt-object')
      case 'CreateMultipartUpload': {
        // S3 ignores a body here; decode-free pass-through is fine.
        const algorithm = headerValue(ctx.headers, 'x-amz-checksum-algorithm')?.toUpperCase()
        if (algorithm !== undefined && algorithm !== 'CRC32') {
          await drain(ctx.req)
          throw s3Error('InvalidRequest', `This stand-in only implements the CRC32 checksum algorithm, not ${algorithm}.`)
        }
        await next()
        this.stats.creates += 1
        if (algorithm && ctx.status === 200) {
          // S3 confirms the checksum it will keep; s3rver keeps the request headers with the upload.
          ctx.set('x-amz-checksum-algorithm', algorithm)
          ctx.set('x-amz-checksum-type', headerValue(ctx.headers, 'x-amz-checksum-type')?.toUpperCase() ?? 'COMPOSITE')
        }
        return
      }
      case 'HeadObject':
      case 'GetObject':
        await next()
        await this.addEncryptionHeaders(ctx, bucket ?? '', key ?? '')
        return this.addChecksumHeaders(ctx, bucket ?? '', key ?? '', dataFault === 'wrong-checksum')
      default:
        return next()
    }
  }

  private async control(ctx: KoaContext): Promise<void> {
    const json = (status: number, body: unknown): void => {
      ctx.status = status
      ctx.type = 'application/json'
      ctx.body = JSON.stringify(body)
    }
    if (ctx.method === 'GET' && ctx.path === '/__control/stats') return json(200, this.stats)
    if (ctx.method === 'POST' && ctx.path === '/__control/reset-stats') {
      this.stats = S3Server.emptyStats()
      return json(200, this.stats)
    }
    if (ctx.method === 'GET' && ctx.path === '/__control/wait') {
      // Long-poll so tests await an event instead of sleeping.
      const n = Number(ctx.query['partBytes'] ?? 0)
      const timeoutMs = Number(ctx.query['timeoutMs'] ?? 30_000)
      if (this.stats.partBytes < n) {
        const reached = await new Promise<boolean>(resolve => {
          const timer = setTimeout(() => {
            this.waiters = this.waiters.filter(w => w !== waiter)
            resolve(false)
          }, timeoutMs)
          const waiter = {
            n,
            resolve: () => {
              clearTimeout(timer)
              resolve(true)
            }
          }
          this.waiters.push(waiter)
        })
        if (!reached) return json(408, { ...this.stats, message: `timed out waiting for partBytes >= ${n}` })
      }
      return json(200, this.stats)
    }
    if (ctx.method === 'POST' && ctx.path === '/__control/faults') {
      const body = JSON.parse((await readAll(ctx.req)).toString('utf8') || '{}') as S3Fault
      if (!['none', 'status', 'reset', 'slow', 'hang', 'lose-answer', ...DATA_FAULTS].includes(body.mode))
        return json(400, { message: `unknown fault mode: ${String(body.mode)}` })
      this.faults.set(body)
      return json(200, this.faults.current)
    }
    return json(404, { message: 'unknown control route' })
  }

  private uploadsDir(store: FilesystemStore, bucket: string): string {
    // s3rver keeps open uploads in <dir>/<bucket>/._S3rver_uploads/<uploadId>/ with a `key` file.
    return store.getResourcePath(bucket, undefined, 'uploads')
  }

  private async requireBucket(ctx: KoaContext, bucket: string): Promise<void> {
    if (!(await ctx.store.getBucket(bucket))) {
      await drain(ctx.req)
      throw s3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket })
    }
  }

  /** The upload's directory if `uploadId` is an open upload of `key`, else NoSuchUpload. */
  private async openUpload(ctx: KoaContext, bucket: string, key: string): Promise<string> {
    const uploadId = String(ctx.query['uploadId'] ?? '')
    const dir = path.join(this.uploadsDir(ctx.store, bucket), uploadId)
    const storedKey = UPLOAD_ID_RE.test(uploadId) ? await fs.readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined) : undefined
    if (storedKey !== key) {
      await drain(ctx.req)
      throw noSuchUpload(uploadId)
    }
    return dir
  }

  private async abort(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    await this.requireBucket(ctx, bucket)
    const dir = await this.openUpload(ctx, bucket, key)
    await fs.rm(dir, { recursive: true, force: true })
    this.stats.aborts += 1
    ctx.status = 204
    ctx.body = null
  }

  private async listUploads(ctx: KoaContext, bucket: string): Promise<void> {
    await this.requireBucket(ctx, bucket)
    const prefix = String(ctx.query['prefix'] ?? '')
    const delimiter = String(ctx.query['delimiter'] ?? '')
    const keyMarker = String(ctx.query['key-marker'] ?? '')
    const maxUploads = Math.min(1000, Number(ctx.query['max-uploads'] ?? 1000) || 1000)
    const dir = this.uploadsDir(ctx.store, bucket)
    const ids = await fs.readdir(dir).catch(() => [] as string[])
    const uploads: Array<{ key: string; id: string; initiated: Date }> = []
    for (const id of ids) {
      const keyFile = path.join(dir, id, 'key')
      // A directory without `key` is not an upload (s3rver creates one for a part to an unknown id).
      const key = await fs.readFile(keyFile, 'utf8').catch(() => undefined)
      if (key === undefined || !key.startsWith(prefix) || (keyMarker && key <= keyMarker)) continue
      uploads.push({ key, id, initiated: (await fs.stat(keyFile)).mtime })
    }
    uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime()))
    const prefixes = new Set<string>()
    const listed: typeof uploads = []
    for (const u of uploads) {
      const idx = delimiter ? u.key.slice(prefix.length).indexOf(delimiter) : -1
      if (idx >= 0) prefixes.add(u.key.slice(0, prefix.length + idx + delimiter.length))
      else listed.push(u)
    }
    const page = listed.slice(0, maxUploads)
    const truncated = listed.length > page.length
    const last = page[page.length - 1]
    const owner = `<ID>${DUMMY_ACCOUNT_ID}</ID><DisplayName>S3rver</DisplayName>`
    const x = xmlEscape
    ctx.status = 200
    ctx.type = 'application/xml'
    ctx.body = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      `<Bucket>${x(bucket)}</Bucket><KeyMarker>${x(keyMarker)}</KeyMarker><UploadIdMarker></UploadIdMarker>`,
      `<NextKeyMarker>${truncated && last ? x(last.key) : ''}</NextKeyMarker><NextUploadIdMarker>${truncated && last ? last.id : ''}</NextUploadIdMarker>`,
      prefix ? `<Prefix>${x(prefix)}</Prefix>` : '<Prefix></Prefix>',
      delimiter ? `<Delimiter>${x(delimiter)}</Delimiter>` : '',
      `<MaxUploads>${maxUploads}</MaxUploads><IsTruncated>${truncated}</IsTruncated>`,
      ...page.map(
        u =>
          `<Upload><Key>${x(u.key)}</Key><UploadId>${u.id}</UploadId><Initiator>${owner}</Initiator><Owner>${owner}</Owner>` +
          `<StorageClass>STANDARD</StorageClass><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`
      ),
      ...[...prefixes].sort().map(p => `<CommonPrefixes><Prefix>${x(p)}</Prefix></CommonPrefixes>`),
      '</ListMultipartUploadsResult>'
    ].join('')
  }

  /** PutObject / UploadPart: decode aws-chunked, count (and maybe throttle) bytes, verify CRC32. */
  private async upload(
    ctx: KoaContext,
    next: Next,
    op: 'PutObject' | 'UploadPart',
    bucket: string,
    key: string,
    bytesPerSec: number | undefined,
    corrupt: boolean
  ): Promise<void> {
    await this.requireBucket(ctx, bucket)
    let partPath: string | undefined
    if (op === 'UploadPart') {
      const dir = await this.openUpload(ctx, bucket, key)
      const partNumber = Number(ctx.query['partNumber'])
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
        await drain(ctx.req)
        throw s3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
          ArgumentName: 'partNumber',
          ArgumentValue: String(ctx.query['partNumber'])
        })
      }
      partPath = path.join(dir, String(partNumber))
    } else if (ctx.headers['if-none-match'] === '*' && (await ctx.store.existsObject(bucket, key))) {
      await drain(ctx.req)
      throw s3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' })
    }

    const headers = ctx.headers
    const encodings = (headerValue(headers, 'content-encoding') ?? '')
      .split(',')
      .map(s => s.trim())
      .filter(Boolean)
    const chunked = encodings.includes('aws-chunked') || (headerValue(headers, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')
    const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [ctx.req]
    let decoder: AwsChunkedDecoder | undefined
    if (chunked) {
      decoder = new AwsChunkedDecoder()
      stages.push(decoder)
      // What S3 stores: the decoded length, and no aws-chunked content-encoding.
      const rest = encodings.filter(e => e !== 'aws-chunked')
      if (rest.length) headers['content-encoding'] = rest.join(',')
      else delete headers['content-encoding']
      const decoded = headerValue(headers, 'x-amz-decoded-content-length')
      if (decoded !== undefined) headers['content-length'] = decoded
    }
    let crc = 0
    let received = 0
    const md5 = headerValue(headers, 'content-md5') === undefined ? undefined : createHash('md5')
    // A signed payload: S3 checks the body against the SHA-256 the signature covers.
    const signedPayload = /^[0-9a-f]{64}$/.test(headerValue(headers, 'x-amz-content-sha256') ?? '') ? createHash('sha256') : undefined
    let flipped = !corrupt
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        if (!flipped && chunk.length > 0) {
          // Damage in transit: one flipped bit, after the client computed its checksums.
          chunk = Buffer.from(chunk)
          chunk[0] = (chunk[0] ?? 0) ^ 0x01
          flipped = true
        }
        crc = zlib.crc32(chunk, crc)
        received += chunk.length
        md5?.update(chunk)
        signedPayload?.update(chunk)
        this.addBytes(chunk.length)
        if (bytesPerSec && bytesPerSec > 0) setTimeout(() => cb(null, chunk), (chunk.length / bytesPerSec) * 1000)
        else cb(null, chunk)
      }
    })
    stages.push(counter)
    // pipeline() destroys every stage if the client goes away mid-body.
    const body = pipeline(stages as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]], () => {}) as unknown as IncomingMessage
    ctx.req = body

    await next()
    if (ctx.status !== 200) return

    const refuse = async (message: string, code = 'BadDigest'): Promise<never> => {
      if (partPath) await Promise.all(['', '.md5', '.crc32'].map(suffix => fs.rm(`${partPath}${suffix}`, { force: true })))
      else await ctx.store.deleteObject(bucket, key)
      throw s3Error(code, message, {}, 400)
    }
    // CRC32 from the header (single-shot body) or the aws-chunked trailer; then Content-MD5 and the
    // signed payload's SHA-256, which S3 checks too.
    const expected = headerValue(headers, 'x-amz-checksum-crc32') ?? decoder?.trailers.get('x-amz-checksum-crc32')
    if (expected !== undefined && crc32Base64(crc) !== expected)
      await refuse('The CRC32 you specified did not match the calculated checksum.')
    const contentMd5 = headerValue(headers, 'content-md5')
    if (md5 && contentMd5 !== md5.digest('base64')) await refuse('The Content-MD5 you specified did not match what we received.')
    if (signedPayload && signedPayload.digest('hex') !== headerValue(headers, 'x-amz-content-sha256')) {
      await refuse("The provided 'x-amz-content-sha256' header does not match what was computed.", 'XAmzContentSHA256Mismatch')
    }
    if (signedPayload) this.stats.signed += 1
    const checksumFile = ctx.store.getResourcePath(bucket, key, 'object.checksum.json')
    if (expected !== undefined) {
      ctx.set('x-amz-checksum-crc32', expected)
      this.stats.checksummed += 1
      if (!partPath) await fs.writeFile(checksumFile, JSON.stringify({ crc32: expected, type: 'FULL_OBJECT' } satisfies StoredChecksum))
    } else if (!partPath) await fs.rm(checksumFile, { force: true })
    if (partPath && (await uploadHeaders(path.dirname(partPath)))['x-amz-server-side-encryption']?.startsWith('aws:kms')) {
      // S3 with SSE-KMS: the part's ETag is not the MD5 of its data.
      const etag = randomBytes(16).toString('hex')
      await fs.writeFile(`${partPath}.md5`, etag)
      ctx.set('ETag', `"${etag}"`)
    }
    // As S3, the part's CRC32 is kept as it arrives: completion combines them without reading the parts again.
    if (partPath) await fs.writeFile(`${partPath}.crc32`, JSON.stringify({ crc32: crc, size: received } satisfies PartCrc32))
    if (op === 'UploadPart') this.stats.parts += 1
    else this.stats.puts += 1
  }

  /** What S3 applies from CreateMultipartUpload and s3rver drops: the tags and the encryption (a new object replaces both). */
  private async keepCreateOptions(
    store: FilesystemStore,
    bucket: string,
    key: string,
    created: Record<string, string | undefined>
  ): Promise<void> {
    const taggingFile = store.getResourcePath(bucket, key, 'tagging.xml')
    const encryptionFile = store.getResourcePath(bucket, key, 'object.sse.json')
    await Promise.all([fs.rm(taggingFile, { force: true }), fs.rm(encryptionFile, { force: true })])
    const tagging = created['x-amz-tagging']
    if (tagging) {
      const x = xmlEscape
      const tags = [...new URLSearchParams(tagging)].map(([k, v]) => `<Tag><Key>${x(k)}</Key><Value>${x(v)}</Value></Tag>`)
      await fs.writeFile(taggingFile, `<Tagging><TagSet>${tags.join('')}</TagSet></Tagging>`)
    }
    const sse = created['x-amz-server-side-encryption']
    if (sse) {
      const kmsKeyId = sse.startsWith('aws:kms') ? created['x-amz-server-side-encryption-aws-kms-key-id'] : undefined
      await fs.writeFile(encryptionFile, JSON.stringify({ sse, kmsKeyId }))
    }
  }

  private async addEncryptionHeaders(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    if (ctx.status !== 200 && ctx.status !== 206) return
    const file = ctx.store.getResourcePath(bucket, key, 'object.sse.json')
    const encryption = JSON.parse(await fs.readFile(file, 'utf8').catch(() => '{}')) as { sse?: string; kmsKeyId?: string }
    if (encryption.sse) ctx.set('x-amz-server-side-encryption', encryption.sse)
    if (encryption.kmsKeyId) ctx.set('x-amz-server-side-encryption-aws-kms-key-id', encryption.kmsKeyId)
  }

  /** Head/GetObject with x-amz-checksum-mode: ENABLED: the CRC32 the object keeps, and its type. */
  private async addChecksumHeaders(ctx: KoaContext, bucket: string, key: string, wrong: boolean): Promise<void> {
    if (ctx.status !== 200 || headerValue(ctx.headers, 'x-amz-checksum-mode')?.toUpperCase() !== 'ENABLED') return
    const file = ctx.store.getResourcePath(bucket, key, 'object.checksum.json')
    const stored = JSON.parse(await fs.readFile(file, 'utf8').catch(() => 'null')) as StoredChecksum | null
    if (!stored) return
    const [value = '', parts] = stored.crc32.split('-')
    const reported = wrong ? crc32Base64(Buffer.from(value, 'base64').readUInt32BE() ^ 0x80) + (parts ? `-${parts}` : '') : stored.crc32
    ctx.set('x-amz-checksum-crc32', reported)
    ctx.set('x-amz-checksum-type', stored.type)
  }

  /** The CRC32 of each part of an open upload, in the order given, and of all of them as one object. */
  private async partCrc32s(dir: string, partNumbers: number[]): Promise<{ parts: number[]; full: number }> {
    const parts: number[] = []
    let full = 0
    for (const number of partNumbers) {
      const part = JSON.parse(await fs.readFile(path.join(dir, `${number}.crc32`), 'utf8')) as PartCrc32
      parts.push(part.crc32)
      full = crc32Combine(full, part.crc32, part.size)
    }
    return { parts, full }
  }

  /**
   * The CRC32 a completed object keeps, when its upload was created with a checksum algorithm. As S3:
   * the parts' CRC32s listed must match (InvalidPart) and a full-object CRC32 sent must be the object's
   * (BadDigest); either leaves the upload open.
   */
  private async completionChecksum(
    ctx: KoaContext,
    dir: string,
    parts: Array<{ num: number; crc32: string | undefined }>,
    created: Record<string, string | undefined>
  ): Promise<StoredChecksum | undefined> {
    if (created['x-amz-checksum-algorithm']?.toUpperCase() !== 'CRC32') return undefined
    const computed = await this.partCrc32s(
      dir,
      parts.map(part => part.num)
    )
    for (const [index, part] of parts.entries()) {
      if (part.crc32 !== undefined && part.crc32 !== crc32Base64(computed.parts[index] ?? 0)) {
        throw s3Error('InvalidPart', 'One or more of the specified parts could not be found or its checksum does not match.', {
          UploadId: String(ctx.query['uploadId']),
          PartNumber: part.num
        })
      }
    }
    const stored: StoredChecksum =
      created['x-amz-checksum-type']?.toUpperCase() === 'FULL_OBJECT'
        ? { crc32: crc32Base64(computed.full), type: 'FULL_OBJECT' }
        : { crc32: `${crc32Base64(zlib.crc32(Buffer.concat(computed.parts.map(crc32Buffer))))}-${parts.length}`, type: 'COMPOSITE' }
    const sent = headerValue(ctx.headers, 'x-amz-checksum-crc32')
    if (sent !== undefined && sent !== stored.crc32) {
      throw s3Error('BadDigest', `The ${stored.type} CRC32 checksum you specified did not match the calculated checksum.`)
    }
    return stored
  }

  /** CompleteMultipartUpload with S3's validations, If-None-Match, multipart ETag and checksums. */
  private async complete(ctx: KoaContext, next: Next, bucket: string, key: string, corruptAfter: boolean): Promise<void> {
    await this.requireBucket(ctx, bucket)
    const dir = await this.openUpload(ctx, bucket, key)
    const xml = (await readAll(ctx.req)).toString('utf8')
    if (ctx.headers['if-none-match'] === '*' && (await ctx.store.existsObject(bucket, key))) {
      throw s3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' })
    }
    const parts = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map(m => {
      const inner = m[1] ?? ''
      const num = Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1])
      const etag = (/<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1] ?? '').replace(/&quot;|&#34;|"/g, '').trim()
      const crc32 = /<ChecksumCRC32>\s*([^<\s]+)\s*<\/ChecksumCRC32>/.exec(inner)?.[1]
      return { num, etag, crc32 }
    })
    if (parts.length === 0) {
      throw s3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.')
    }
    const md5s: Buffer[] = []
    for (const [i, part] of parts.entries()) {
      const prev = parts[i - 1]
      if (prev && part.num <= prev.num)
        throw s3Error(
          'InvalidPartOrder',
          'The list of parts was not in ascending order. The parts list must be specified in order by part number.'
        )
      const file = path.join(dir, String(part.num))
      const [stat, md5] = await Promise.all([
        fs.stat(file).catch(() => undefined),
        fs.readFile(`${file}.md5`, 'utf8').catch(() => undefined)
      ])
      if (!stat || md5 !== part.etag) {
        throw s3Error(
          'InvalidPart',
          "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
          { UploadId: String(ctx.query['uploadId']), PartNumber: part.num, ETag: part.etag }
        )
      }
      if (i < parts.length - 1 && stat.size < MIN_PART_SIZE) {
        throw s3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          ProposedSize: stat.size,
          MinSizeAllowed: MIN_PART_SIZE,
          PartNumber: part.num,
          ETag: part.etag
        })
      }
      md5s.push(Buffer.from(md5, 'hex'))
    }
    const etag = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}`

    const created = await uploadHeaders(dir) // s3rver deletes the upload on completion
    const checksum = await this.completionChecksum(ctx, dir, parts, created)
    ctx.req = Readable.from([Buffer.from(xml)]) as unknown as IncomingMessage // replay the body for s3rver
    await next()
    if (ctx.status !== 200) return
    await this.keepCreateOptions(ctx.store, bucket, key, created)
    // S3's multipart ETag, both in the stored metadata (Head/Get) and in the response.
    await fs.writeFile(ctx.store.getResourcePath(bucket, key, 'object.md5'), etag)
    const checksumFile = ctx.store.getResourcePath(bucket, key, 'object.checksum.json')
    if (checksum) await fs.writeFile(checksumFile, JSON.stringify(checksum))
    else await fs.rm(checksumFile, { force: true })
    if (corruptAfter) {
      // Damage the store does not notice: its checksum and ETag still describe the original bytes.
      const file = await fs.open(ctx.store.getResourcePath(bucket, key, 'object'), 'r+')
      const byte = Buffer.alloc(1)
      await file.read(byte, 0, 1, 0)
      byte[0] = (byte[0] ?? 0) ^ 0x01
      await file.write(byte, 0, 1, 0)
      await file.close()
    }
    if (typeof ctx.body === 'string') ctx.body = ctx.body.replace(/<ETag>[\s\S]*?<\/ETag>/, `<ETag>&quot;${etag}&quot;</ETag>`)
    this.stats.completes += 1
  }
}

/** The headers CreateMultipartUpload was sent with (s3rver keeps them in the upload's directory). */
async function uploadHeaders(uploadDir: string): Promise<Record<string, string | undefined>> {
  return JSON.parse(await fs.readFile(path.join(uploadDir, 'metadata'), 'utf8').catch(() => '{}')) as Record<string, string | undefined>
}

const DUMMY_ACCOUNT_ID = '123456789000'

export async function startS3(opts: S3Options): Promise<{ s3: S3Server; port: number }> {
  await fs.mkdir(opts.directory, { recursive: true })
  const s3 = new S3Server(opts)
  const port = await s3.listen()
  return { s3, port }
}
