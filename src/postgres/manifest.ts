import { readManifestJson } from '../archive/manifest.js'
/**
 * database/manifest.json: what the dump holds, for a person reading the archive and for the
 * restore, which checks every table's row count against it.
 */
export interface DatabaseManifest {
  /** This file's own format: a reader refuses a version it does not know. */
  manifestVersion: 1
  /** When the snapshot was taken (ISO 8601, UTC). */
  createdAt: string
  database: string
  server: { version: string }
  /** The tool that wrote the parts, as `pg_dump --version` says it. */
  client: { version: string; pgDump: string }
  /** The parts, in the order psql applies them: each file's size and SHA-256. */
  parts: ManifestPart[]
  /** Every table data.sql holds rows for, with its exact row count in the dump's snapshot. */
  tables: ManifestTable[]
  /** What was left out, as Supabase's own backups leave it out (see README). */
  excluded: { schemas: string[]; dataSchemas: string[]; dataTables: string[]; roles: string[] }
}

export interface ManifestPart {
  /** Path in the archive, e.g. database/data.sql. */
  path: string
  bytes: number
  sha256: string
}

export interface ManifestTable {
  schema: string
  name: string
  rows: number
}

export const DATABASE_FOLDER = 'database'
export const PART_NAMES = ['roles.sql', 'schema.sql', 'data.sql'] as const
export type PartName = (typeof PART_NAMES)[number]
export const MANIFEST_PATH = `${DATABASE_FOLDER}/manifest.json`

export function partPath(name: PartName): string {
  return `${DATABASE_FOLDER}/${name}`
}

/** The manifest read back (restore): the fields the restore relies on are checked. */
export function parseManifest(text: string): DatabaseManifest {
  const manifest = readManifestJson<DatabaseManifest>(text, MANIFEST_PATH)
  if (!Array.isArray(manifest.tables) || !Array.isArray(manifest.parts)) throw new Error(`${MANIFEST_PATH} lists no tables or parts.`)
  for (const table of manifest.tables) {
    if (typeof table?.schema !== 'string' || typeof table.name !== 'string' || !Number.isSafeInteger(table.rows)) {
      throw new Error(`${MANIFEST_PATH} has a table entry without schema, name and rows.`)
    }
  }
  return manifest as DatabaseManifest
}
