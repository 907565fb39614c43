// A generated database for the bench's database contenders: a fresh database on the services' cluster
// with a mix of wide text rows (posts), numeric rows (readings) and bytea (attachments), about `size`
// on disk. Deterministic: every value comes from hashint8() or sha256() of the row's id, so the same
// size gives the same rows. The text is words of a vocabulary strung into a corpus of sentences larger
// than zstd -3's window, so it compresses like text rather than like repeated data; the bytea is
// incompressible, as images and PDFs are. Generating a GiB takes minutes, so a database left by an
// earlier run (`--keep`) is reused when its marker says it was made by this generator at this size.
import { spawn } from 'node:child_process'
import pg from 'pg'
import type { Services } from '../__tests__/harness/services.js'

const MiB = 1024 * 1024
/** Bump when the generated rows change, so an older database is made again. */
const GENERATOR = 1

export interface GeneratedDatabase {
  name: string
  /** A superuser URL of the database. */
  url: string
  /** pg_database_size. */
  bytes: number
  /** The size of a plain `pg_dump` of it. */
  dumpBytes: number
  /** Bytes of bytea: twice as many in the dump, which writes them in hex. */
  byteaBytes: number
  tables: { name: string; rows: number }[]
  reused: boolean
}

/** Each table's share of the size, the rows a batch inserts, and the batch as SQL over ids $1..$2. */
const TABLES = [
  {
    name: 'posts',
    share: 0.45,
    // About 1.3 KiB a row.
    rowBytes: 1300,
    create: `create table public.posts (
      id bigint primary key,
      author text not null,
      title text not null,
      body text not null,
      tags text[] not null,
      created_at timestamptz not null
    )`,
    insert: `insert into public.posts
      select i,
        'user_' || (hashint8(i) & 65535),
        (select string_agg(v.word, ' ' order by g) from generate_series(1, 3 + i % 6) g join pg_temp.vocab v on v.id = hashint8(i * 16 + g) & 4095),
        (select string_agg(t.text, ' ' order by g) from generate_series(1, 4 + i % 20) g join pg_temp.sentences t on t.id = hashint8(i * 64 + g) & 262143),
        array(select v.word from generate_series(1, i % 5) g join pg_temp.vocab v on v.id = hashint8(i * 8 + g) & 255 order by g),
        timestamptz '2024-01-01 00:00:00+00' + i * interval '17 seconds' + (hashint8(i * 3) & 16383) * interval '1 ms'
      from generate_series($1::bigint, $2::bigint) i`
  },
  {
    name: 'readings',
    share: 0.25,
    rowBytes: 90,
    create: `create table public.readings (
      id bigint primary key,
      sensor integer not null,
      recorded_at timestamptz not null,
      value numeric(14, 4) not null,
      temperature double precision not null,
      humidity real not null,
      ok boolean not null
    )`,
    insert: `insert into public.readings
      select i,
        hashint8(i) & 1023,
        timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
        round(((hashint8(i * 3) & 2147483647) / 2147483648.0 * 100000)::numeric, 4),
        20 + 15 * sin(i / 5000.0) + (hashint8(i * 5) & 1023) / 1024.0,
        ((hashint8(i * 7) & 65535) / 655.36)::real,
        (hashint8(i * 11) & 15) <> 0
      from generate_series($1::bigint, $2::bigint) i`
  },
  {
    name: 'attachments',
    share: 0.3,
    // 1 to 33 KiB of random bytes, 17 on average.
    rowBytes: 17_500,
    create: `create table public.attachments (
      id bigint primary key,
      post_id bigint not null,
      name text not null,
      mime text not null,
      content bytea not null
    )`,
    insert: `insert into public.attachments
      select i,
        1 + (hashint8(i) & 65535),
        'file_' || i || '.bin',
        (array['image/png', 'image/jpeg', 'application/pdf', 'application/octet-stream'])[1 + i % 4],
        (select string_agg(sha256(int8send(i * 2048 + g)), ''::bytea order by g) from generate_series(1, 32 + (hashint8(i * 13) & 1023)) g)
      from generate_series($1::bigint, $2::bigint) i`
  }
] as const

/** The vocabulary (4096 words of 3 to 10 letters) and 262 144 sentences drawn from it, skewed as words are in text. */
const CORPUS_SQL = `
create temp table vocab as
  select i as id, translate(substr(md5('word' || i), 1, 3 + i % 8), '0123456789abcdef', 'etaoinshrdlcumwf') as word
  from generate_series(0, 4095) i;
create unique index on pg_temp.vocab (id);
create temp table sentences as
  select s as id, upper(left(words, 1)) || substr(words, 2) || '.' as text
  from (
    select s, string_agg(v.word, ' ' order by g) as words
    from generate_series(0, 262143) s
    cross join lateral generate_series(1, 5 + s % 13) g
    join pg_temp.vocab v on v.id = floor(4096 * power((hashint8(s::bigint * 32 + g) & 2147483647)::float8 / 2147483648, 2.5))::int
    group by s
  ) drawn;
create unique index on pg_temp.sentences (id);
analyze pg_temp.vocab;
analyze pg_temp.sentences;
`

export function databaseName(size: number): string {
  return `bench_${Math.round(size / MiB)}mib`
}

/**
 * The database of about `size` bytes, made unless one with this generator's marker is there. The
 * marker (the database's comment) is written last, so a generation that was interrupted is made again.
 */
export async function generateDatabase(
  svc: Services,
  size: number,
  pgDump: string,
  log: (line: string) => void
): Promise<GeneratedDatabase> {
  const name = databaseName(size)
  const url = databaseUrl(svc, name)
  const wanted = `bench generator ${GENERATOR}, ${size} bytes`
  const [existing] = await svc.sql<{ marker: string | null }>(
    `select shobj_description(oid, 'pg_database') as marker from pg_database where datname = $1`,
    [name]
  )
  const reused = existing?.marker?.startsWith(`${wanted};`) ?? false
  if (!reused) {
    if (existing) log(`The database ${name} is from another generator or was not finished: making it again.`)
    await svc.sql(`drop database if exists ${name} with (force)`)
    await svc.sql(`create database ${name}`)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await fill(client, size, log)
    } finally {
      await client.end()
    }
    log('Measuring a plain pg_dump of it ...')
    const dumpBytes = await countDump(pgDump, url)
    await svc.sql(`comment on database ${name} is '${wanted}; dump ${dumpBytes} bytes'`)
  }
  const [marker] = await svc.sql<{ marker: string }>(
    `select shobj_description(oid, 'pg_database') as marker from pg_database where datname = $1`,
    [name]
  )
  const dumpBytes = Number(/; dump (\d+) bytes$/.exec(marker?.marker ?? '')?.[1] ?? NaN)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const [{ bytes }] = (await client.query<{ bytes: string }>('select pg_database_size(current_database()) as bytes')).rows as [
      { bytes: string }
    ]
    const { rows: bytea } = await client.query<{ bytes: string }>('select sum(octet_length(content)) as bytes from public.attachments')
    const tables: { name: string; rows: number }[] = []
    for (const table of TABLES) {
      const { rows } = await client.query<{ rows: string }>(`select count(*) as rows from public.${table.name}`)
      tables.push({ name: table.name, rows: Number(rows[0]?.rows ?? 0) })
    }
    return { name, url, bytes: Number(bytes), dumpBytes, byteaBytes: Number(bytea[0]?.bytes ?? 0), tables, reused }
  } finally {
    await client.end()
  }
}

export async function dropDatabase(svc: Services, name: string): Promise<void> {
  await svc.sql(`drop database if exists ${name} with (force)`)
}

/** Fills each table in batches until it holds its share of the size, then vacuums (hint bits set, as on a database in use). */
async function fill(client: pg.Client, size: number, log: (line: string) => void): Promise<void> {
  const started = performance.now()
  // Rows are written once and never updated: no WAL needed beyond what the cluster's settings ask.
  await client.query('set synchronous_commit = off')
  await client.query(CORPUS_SQL)
  for (const table of TABLES) {
    await client.query(table.create)
    const target = table.share * size
    // About 40 batches a table: the size lands within a few percent of its share.
    const batch = Math.max(1, Math.ceil(target / table.rowBytes / 40))
    let next = 1
    for (;;) {
      await client.query(table.insert, [next, next + batch - 1])
      next += batch
      const { rows } = await client.query<{ bytes: string }>(`select pg_total_relation_size('public.${table.name}') as bytes`)
      if (Number(rows[0]?.bytes ?? 0) >= target) break
    }
    log(`  ${table.name}: ${next - 1} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`)
  }
  await client.query('vacuum (analyze, freeze)')
  await client.query('checkpoint')
}

/** Bytes of a plain pg_dump of the database. */
function countDump(pgDump: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(pgDump, [`--dbname=${url}`], { stdio: ['ignore', 'pipe', 'inherit'] })
    let bytes = 0
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length))
    child.on('error', reject)
    child.on('close', code => (code === 0 ? resolve(bytes) : reject(new Error(`pg_dump exited ${code}`))))
  })
}

function databaseUrl(svc: Services, name: string): string {
  const url = new URL(svc.env.DATABASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}
