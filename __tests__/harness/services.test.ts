// Proves the local stand-ins answer like Supabase (PostgREST behind Kong) and S3 for what our
// code relies on. Needs `bash scripts/services.sh start` first.
import assert from 'node:assert/strict'
import { randomUUID, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListBucketsCommand,
  S3Client,
  UploadPartCommand
} from '@aws-sdk/client-s3'
import { createClient } from '@supabase/supabase-js'
import type { SupabaseClient } from '@supabase/supabase-js'
import { signJwt } from '../../scripts/test-services/jwt.js'
import { presignGetObject } from '../../supabase/functions/_shared/presign.js'
import { services } from './services.js'
import type { Services } from './services.js'

let svc: Services
let admin: SupabaseClient

const client = (key: string, bearer?: string): SupabaseClient =>
  createClient(svc.env.SUPABASE_URL, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    ...(bearer ? { global: { headers: { Authorization: `Bearer ${bearer}` } } } : {})
  })

interface Row {
  id: string
  status: string
  s3_key: string | null
  size_bytes: number | null
  workflow_run_id: string | null
  finished_at: string | null
}

/** Insert in_progress rows tagged with a fresh workflow_run_id, as the superuser. */
async function seed(n: number): Promise<{ tag: string; ids: string[] }> {
  const tag = `run-${randomUUID()}`
  const rows = await svc.sql<{ id: string }>(
    `insert into public.backup_history (workflow_run_id) select $1 from generate_series(1, $2::int) returning id`,
    [tag, n]
  )
  return { tag, ids: rows.map(r => r.id) }
}

const success = (key = 'k.zip') => ({ status: 'success', s3_key: key, size_bytes: 42, finished_at: new Date().toISOString() })

before(async () => {
  svc = await services()
  admin = client(svc.env.SUPABASE_SERVICE_ROLE_KEY)
  await svc.clearFaults()
})

after(async () => {
  await svc.clearFaults()
  await svc.end()
})

describe('PostgREST stand-in via supabase-js', () => {
  test('select with eq and limit', async () => {
    const { tag } = await seed(3)
    const { data, error, status } = await admin.from('backup_history').select('id, status').eq('workflow_run_id', tag).limit(2)
    assert.equal(error, null)
    assert.equal(status, 200)
    assert.equal(data?.length, 2)
    assert.deepEqual(Object.keys(data?.[0] ?? {}).sort(), ['id', 'status'])
  })

  test('count=exact, order and Content-Range', async () => {
    const { tag } = await seed(3)
    const { data, count, error } = await admin
      .from('backup_history')
      .select('*', { count: 'exact' })
      .eq('workflow_run_id', tag)
      .order('created_at', { ascending: false })
      .range(0, 0)
    assert.equal(error, null)
    assert.equal(count, 3)
    assert.equal(data?.length, 1)
  })

  test('update with .eq().eq().select() returns the updated rows', async () => {
    const { tag, ids } = await seed(1)
    const { data, error, status } = await admin
      .from('backup_history')
      .update(success())
      .eq('id', ids[0])
      .eq('status', 'in_progress')
      .select()
    assert.equal(error, null)
    assert.equal(status, 200)
    const rows = data as Row[]
    assert.equal(rows.length, 1)
    assert.equal(rows[0]?.status, 'success')
    assert.equal(rows[0]?.size_bytes, 42) // bigint is a JSON number, as in PostgREST
    assert.equal(rows[0]?.workflow_run_id, tag)
    // the guard: matching on status makes a second finalize a no-op
    const again = await admin.from('backup_history').update(success()).eq('id', ids[0]).eq('status', 'in_progress').select()
    assert.deepEqual(again.data, [])
  })

  test('insert().select().single() returns the object', async () => {
    const dispatch = randomUUID()
    const { data, error, status } = await admin
      .from('backup_history')
      .insert({ dispatch_id: dispatch, workflow_run_id: 'x' })
      .select()
      .single()
    assert.equal(error, null)
    assert.equal(status, 201)
    const row = data as Row & { dispatch_id: string }
    assert.equal(row.dispatch_id, dispatch)
    assert.equal(row.status, 'in_progress')
    // unique violation → 409 23505
    const dup = await admin.from('backup_history').insert({ dispatch_id: dispatch })
    assert.equal(dup.status, 409)
    assert.equal(dup.error?.code, '23505')
  })

  test('.single() on 0 rows → 406 PGRST116', async () => {
    const { data, error, status } = await admin.from('backup_history').select().eq('id', randomUUID()).single()
    assert.equal(data, null)
    assert.equal(status, 406)
    assert.equal(error?.code, 'PGRST116')
    assert.equal(error?.details, 'The result contains 0 rows')
  })

  test('.maybeSingle() on 0 rows → null, no error', async () => {
    const { data, error } = await admin.from('backup_history').select().eq('id', randomUUID()).maybeSingle()
    assert.equal(error, null)
    assert.equal(data, null)
  })

  test('PATCH with .single() matching 2 rows is rolled back', async () => {
    const { tag } = await seed(2)
    const { error, status } = await admin
      .from('backup_history')
      .update({ error_text: 'x', status: 'failed', finished_at: new Date().toISOString() })
      .eq('workflow_run_id', tag)
      .select()
      .single()
    assert.equal(status, 406)
    assert.equal(error?.code, 'PGRST116')
    assert.equal(error?.details, 'The result contains 2 rows')
    const rows = await svc.sql<Row>('select status from public.backup_history where workflow_run_id = $1', [tag])
    assert.deepEqual(
      rows.map(r => r.status),
      ['in_progress', 'in_progress']
    )
  })

  test('check violation (terminal fields) → 400 23514; terminal rows cannot change', async () => {
    const { ids } = await seed(1)
    const bad = await admin.from('backup_history').update({ status: 'success' }).eq('id', ids[0])
    assert.equal(bad.status, 400)
    assert.equal(bad.error?.code, '23514')
    await admin.from('backup_history').update(success()).eq('id', ids[0])
    const again = await admin.from('backup_history').update({ error_text: 'late' }).eq('id', ids[0])
    assert.equal(again.status, 400)
    assert.equal(again.error?.code, '23514')
  })

  test('wrong apikey → 401 Invalid API key', async () => {
    const { error, status } = await client('not-a-key').from('backup_history').select()
    assert.equal(status, 401)
    assert.equal(error?.message, 'Invalid API key')
  })

  test('bad JWT signature → 401 PGRST301; expired → 401 PGRST303', async () => {
    const now = Math.floor(Date.now() / 1000)
    const forged = signJwt({ role: 'service_role', iat: now, exp: now + 3600 }, 'wrong-secret-wrong-secret-wrong-secret')
    const r1 = await client(svc.env.SUPABASE_ANON_KEY, forged).from('backup_history').select()
    assert.equal(r1.status, 401)
    assert.equal(r1.error?.code, 'PGRST301')
    const expired = signJwt({ role: 'service_role', iat: now - 7200, exp: now - 3600 }, svc.env.JWT_SECRET)
    const r2 = await client(svc.env.SUPABASE_ANON_KEY, expired).from('backup_history').select()
    assert.equal(r2.status, 401)
    assert.equal(r2.error?.code, 'PGRST303')
  })

  test('anon: RLS hides rows and blocks updates', async () => {
    const { tag, ids } = await seed(1)
    const anon = client(svc.env.SUPABASE_ANON_KEY)
    const read = await anon.from('backup_history').select().eq('workflow_run_id', tag)
    assert.equal(read.error, null)
    assert.deepEqual(read.data, [])
    const upd = await anon.from('backup_history').update(success()).eq('id', ids[0]).select()
    assert.equal(upd.error, null)
    assert.deepEqual(upd.data, [])
    const rows = await svc.sql<Row>('select status from public.backup_history where id = $1', [ids[0]])
    assert.equal(rows[0]?.status, 'in_progress')
    // an insert violates RLS → 42501, 401 for anon
    const ins = await anon.from('backup_history').insert({ workflow_run_id: 'anon' })
    assert.equal(ins.status, 401)
    assert.equal(ins.error?.code, '42501')
  })

  test('malformed uuid filter → 400 22P02', async () => {
    const { error, status } = await admin.from('backup_history').select().eq('id', 'not-a-uuid')
    assert.equal(status, 400)
    assert.equal(error?.code, '22P02')
  })

  test('unknown table → 404 PGRST205; unknown column → 400 42703', async () => {
    const t = await admin.from('no_such_table').select()
    assert.equal(t.status, 404)
    assert.equal(t.error?.code, 'PGRST205')
    assert.equal(t.error?.message, "Could not find the table 'public.no_such_table' in the schema cache")
    const c = await admin.from('backup_history').select('nope')
    assert.equal(c.status, 400)
    assert.equal(c.error?.code, '42703')
  })

  test('unsupported filter syntax → 400 PGRST100', async () => {
    const res = await fetch(`${svc.env.SUPABASE_URL}/rest/v1/backup_history?id=foo.bar`, {
      headers: { apikey: svc.env.SUPABASE_SERVICE_ROLE_KEY }
    })
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as { code: string }).code, 'PGRST100')
  })

  test('database down → 503 PGRST001, then recovers', async () => {
    const { ids } = await seed(1)
    await svc.postgres.stop()
    try {
      const { error, status } = await admin.from('backup_history').update(success()).eq('id', ids[0])
      assert.equal(status, 503)
      assert.equal(error?.code, 'PGRST001')
    } finally {
      await svc.postgres.start()
    }
    const { error, status } = await admin.from('backup_history').update(success()).eq('id', ids[0])
    assert.equal(error, null)
    assert.equal(status, 204)
  })

  test('faults: status 503 once, connection reset, stats', async () => {
    await svc.rest.resetStats()
    await svc.rest.faults({ mode: 'status', status: 503, methods: ['PATCH'], count: 1 })
    const { ids } = await seed(1)
    const first = await admin.from('backup_history').update(success()).eq('id', ids[0])
    assert.equal(first.status, 503)
    assert.equal(first.error?.code, 'PGRST001')
    const second = await admin.from('backup_history').update(success()).eq('id', ids[0])
    assert.equal(second.status, 204)
    await svc.rest.faults({ mode: 'reset', methods: ['PATCH'] })
    const reset = await admin.from('backup_history').update(success()).eq('id', ids[0])
    assert.equal(reset.status, 0) // supabase-js reports network errors with status 0
    await svc.clearFaults()
    const stats = await svc.rest.stats()
    assert.equal(stats.byMethod['PATCH'], 3)
    assert.equal(stats.faulted, 2)
  })
})

describe('S3 (patched s3rver) via the AWS SDK', () => {
  let bucket: string
  before(async () => {
    bucket = await svc.newBucket()
  })

  test('the right secret works; a wrong secret → SignatureDoesNotMatch; unknown key → InvalidAccessKeyId', async () => {
    await svc.s3.client.send(new ListBucketsCommand({}))
    const mk = (id: string, secret: string): S3Client =>
      new S3Client({
        endpoint: svc.env.S3_ENDPOINT,
        region: 'us-east-1',
        forcePathStyle: true,
        maxAttempts: 1,
        credentials: { accessKeyId: id, secretAccessKey: secret }
      })
    await assert.rejects(mk(svc.env.S3_ACCESS_KEY_ID, 'wrong').send(new ListBucketsCommand({})), { name: 'SignatureDoesNotMatch' })
    // Checked before anything else, also for requests with a body and a query string.
    await assert.rejects(
      mk(svc.env.S3_ACCESS_KEY_ID, 'wrong').send(
        new UploadPartCommand({ Bucket: bucket, Key: 'x', UploadId: 'abc', PartNumber: 1, Body: 'zz' })
      ),
      { name: 'SignatureDoesNotMatch' }
    )
    await assert.rejects(mk('AKIAUNKNOWN', 'x').send(new ListBucketsCommand({})), { name: 'InvalidAccessKeyId' })
    const anonymous = await fetch(`${svc.env.S3_ENDPOINT}/${bucket}/x`)
    assert.equal(anonymous.status, 403)
  })

  test('multipart with default flexible checksums round-trips; If-None-Match on complete', async () => {
    const c = svc.s3.client
    const key = 'mp/object.bin'
    const part1 = randomBytes(5 * 1024 * 1024)
    const part2 = randomBytes(300_000)
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    const p1 = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: part1 }))
    // A stream body makes the SDK use aws-chunked encoding with a CRC32 trailer.
    const p2 = await c.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        PartNumber: 2,
        Body: Readable.from([part2.subarray(0, 100_000), part2.subarray(100_000)]),
        ContentLength: part2.length
      })
    )
    const done = await c.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        IfNoneMatch: '*',
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: p1.ETag },
            { PartNumber: 2, ETag: p2.ETag }
          ]
        }
      })
    )
    assert.match(done.ETag ?? '', /^"[0-9a-f]{32}-2"$/)
    assert.deepEqual(await svc.s3.getObject(bucket, key), Buffer.concat([part1, part2]))
    assert.equal((await svc.s3.headObject(bucket, key)).ETag, done.ETag)
    assert.deepEqual(await svc.s3.openUploads(bucket, 'mp/'), [])

    // Completing onto an existing key with If-None-Match: * → 412.
    const second = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    const q1 = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: second.UploadId, PartNumber: 1, Body: part2 }))
    await assert.rejects(
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: second.UploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: q1.ETag }] }
        })
      ),
      (err: { name?: string; $metadata?: { httpStatusCode?: number } }) =>
        err.name === 'PreconditionFailed' && err.$metadata?.httpStatusCode === 412
    )
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: second.UploadId }))
  })

  test('parts below 5 MiB (except the last) → EntityTooSmall', async () => {
    const c = svc.s3.client
    const key = 'small-parts'
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    const a = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'aaa' }))
    const b = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, Body: 'bbb' }))
    await assert.rejects(
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: a.ETag },
              { PartNumber: 2, ETag: b.ETag }
            ]
          }
        })
      ),
      { name: 'EntityTooSmall' }
    )
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
  })

  test('abort removes the upload from ListMultipartUploads; later parts → NoSuchUpload', async () => {
    const c = svc.s3.client
    const a = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'abort/a' }))
    const b = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'abort/b' }))
    await c.send(new UploadPartCommand({ Bucket: bucket, Key: 'abort/a', UploadId: a.UploadId, PartNumber: 1, Body: 'x' }))
    let open = await svc.s3.openUploads(bucket, 'abort/')
    assert.deepEqual(
      open.map(u => [u.key, u.uploadId]),
      [
        ['abort/a', a.UploadId],
        ['abort/b', b.UploadId]
      ]
    )
    assert.ok(open[0]?.initiated instanceof Date)
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'abort/a', UploadId: a.UploadId }))
    open = await svc.s3.openUploads(bucket, 'abort/')
    assert.deepEqual(
      open.map(u => u.key),
      ['abort/b']
    )
    await assert.rejects(
      c.send(new UploadPartCommand({ Bucket: bucket, Key: 'abort/a', UploadId: a.UploadId, PartNumber: 2, Body: 'y' })),
      { name: 'NoSuchUpload' }
    )
    await assert.rejects(c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'abort/a', UploadId: a.UploadId })), {
      name: 'NoSuchUpload'
    })
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'abort/b', UploadId: b.UploadId }))
    assert.deepEqual(await svc.s3.openUploads(bucket, 'abort/'), [])
  })

  test('PutObject If-None-Match: * → 412 on an existing key', async () => {
    await svc.s3.putObject(bucket, 'once', 'first', { IfNoneMatch: '*' })
    await assert.rejects(svc.s3.putObject(bucket, 'once', 'second', { IfNoneMatch: '*' }), { name: 'PreconditionFailed' })
    assert.equal((await svc.s3.getObject(bucket, 'once')).toString(), 'first')
  })

  test('presigned GET URLs: the signature and the expiry are checked, as S3 does; response overrides are answered', async () => {
    await svc.s3.putObject(bucket, 'presigned/a b.zip', 'the archive')
    const location = { endpoint: svc.env.S3_ENDPOINT, bucket, region: svc.env.S3_REGION, forcePathStyle: true }
    const credentials = { accessKeyId: svc.env.S3_ACCESS_KEY_ID, secretAccessKey: svc.env.S3_SECRET_ACCESS_KEY }
    const presign = async (options: { now?: Date; expiresInSeconds?: number; secret?: string } = {}): Promise<string> => {
      const { secret = credentials.secretAccessKey, expiresInSeconds = 60, now } = options
      const query = { 'response-content-disposition': 'attachment; filename="a b.zip"' }
      return (
        await presignGetObject(location, { ...credentials, secretAccessKey: secret }, 'presigned/a b.zip', { expiresInSeconds, now, query })
      ).url
    }
    const answer = async (url: string): Promise<{ status: number; text: string; disposition: string | null }> => {
      const response = await fetch(url)
      return { status: response.status, text: await response.text(), disposition: response.headers.get('content-disposition') }
    }

    const valid = await answer(await presign())
    assert.deepEqual(valid, { status: 200, text: 'the archive', disposition: 'attachment; filename="a b.zip"' })
    const tampered = (await presign()).replace('filename%3D%22a', 'filename%3D%22b')
    assert.match((await answer(tampered)).text, /SignatureDoesNotMatch/)
    assert.match((await answer(await presign({ secret: 'wrong' }))).text, /SignatureDoesNotMatch/)
    const otherKey = (await presign()).replace('/presigned/a%20b.zip', '/presigned/other.zip')
    assert.equal((await answer(otherKey)).status, 403)
    const expired = await answer(await presign({ now: new Date(Date.now() - 120_000) }))
    assert.equal(expired.status, 403)
    assert.match(expired.text, /AccessDenied[\s\S]*Request has expired/)
    const tooLong = (await presign()).replace('X-Amz-Expires=60', `X-Amz-Expires=${7 * 24 * 3600 + 1}`)
    assert.match((await answer(tooLong)).text, /X-Amz-Expires must be less than a week/)
  })

  test('wait?partBytes resolves when bytes arrive; faults on an operation', async () => {
    await svc.s3.resetStats()
    const waiting = svc.s3.waitForPartBytes(1000, 10_000)
    await svc.s3.putObject(bucket, 'bytes', randomBytes(1500))
    assert.ok((await waiting).partBytes >= 1000) // resolved while (or after) the body streamed in
    const stats = await svc.s3.stats()
    assert.equal(stats.partBytes, 1500)
    assert.equal(stats.puts, 1)

    // One 503 (SlowDown) on PutObject: the SDK retries and succeeds.
    await svc.s3.faults({ mode: 'status', status: 503, op: 'PutObject', count: 1 })
    await svc.s3.putObject(bucket, 'retried', 'ok')
    assert.equal((await svc.s3.stats()).faulted, 1)
    assert.deepEqual(
      (await svc.s3.objects(bucket, 'retried')).map(o => o.key),
      ['retried']
    )
  })
})
