/** The archive formats the action writes and the restore reads, and what each accepts. */
export const ARCHIVE_FORMATS = ['zip', 'tar.gz', 'tar.zst', 'tar'] as const
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number]

/** Compression levels each format accepts, and the default when `compression-level` is empty. */
export const COMPRESSION_LEVELS: Record<ArchiveFormat, { min: number; max: number; default: number } | undefined> = {
  zip: { min: 0, max: 9, default: 6 },
  'tar.gz': { min: 0, max: 9, default: 6 },
  'tar.zst': { min: 1, max: 19, default: 3 },
  tar: undefined
}

export const CONTENT_TYPES: Record<ArchiveFormat, string> = {
  zip: 'application/zip',
  'tar.gz': 'application/gzip',
  'tar.zst': 'application/zstd',
  tar: 'application/x-tar'
}
