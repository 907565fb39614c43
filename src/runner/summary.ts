import * as core from '@actions/core'
import { messageOf } from '../errors.js'

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${units[unit]}`
}

export interface BackupReport {
  status: string
  dispatchId: string
  rowId?: string | undefined
  location?: string | undefined
  sizeBytes?: number | undefined
  sha256?: string | undefined
  /** What the object was checked against before success (the `verify` mode and its checks). */
  verification?: string | undefined
  files?: number | undefined
  /** Bytes of file content read into the archive. */
  bytesRead?: number | undefined
  format?: string | undefined
  /** How the object is encrypted (age: to whom), when it is. */
  encryption?: string | undefined
  /** SHA-256 of the archive inside an encrypted object. */
  plaintextSha256?: string | undefined
  durationMs?: number | undefined
  /** Time spent streaming the archive into the store, for the throughput. */
  uploadMs?: number | undefined
  /** What the archive's database/ part holds. */
  database?: string | undefined
  /** What the archive's storage/ part holds: buckets, objects, bytes. */
  storage?: string | undefined
  /** What the user should know about what the archive holds: matched entries left out, names stored specially. */
  notes?: readonly string[] | undefined
  reason?: string | undefined
}

/** A short table in the job summary, so the outcome is visible without opening the log. */
export async function writeSummary(title: string, report: BackupReport): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const rows: [string, string][] = [
    ['Status', report.status],
    ['Dispatch id', report.dispatchId],
    ['Row id', report.rowId ?? ''],
    ['Key', report.location ?? ''],
    ['Size', report.sizeBytes === undefined ? '' : `${formatBytes(report.sizeBytes)} (${report.sizeBytes} bytes)`],
    ['SHA-256', report.sha256 ?? ''],
    ['Encrypted', report.encryption ?? ''],
    ['Archive SHA-256', report.plaintextSha256 ? `${report.plaintextSha256} (before encryption)` : ''],
    ['Verified', report.verification ?? ''],
    ['Database', report.database ?? ''],
    ['Storage', report.storage ?? ''],
    ['Files', report.files === undefined ? '' : String(report.files)],
    ['Read', report.bytesRead === undefined ? '' : `${formatBytes(report.bytesRead)} (${report.bytesRead} bytes)`],
    ['Duration', report.durationMs === undefined ? '' : `${(report.durationMs / 1000).toFixed(1)} s`],
    ['Throughput', throughput(report)],
    ['Format', report.format ?? ''],
    ['Notes', (report.notes ?? []).map(escapeHtml).join('<br>')],
    ['Reason', report.reason ?? '']
  ]
  try {
    await core.summary
      .addHeading(title, 3)
      .addTable(rows.filter(([, value]) => value !== '').map(([name, value]) => [{ data: name, header: true }, value]))
      .write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** The table's cells are HTML: file names in a note may hold `<` or `&`. */
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function throughput({ sizeBytes, uploadMs }: BackupReport): string {
  if (sizeBytes === undefined || !uploadMs) return ''
  return `${formatBytes(sizeBytes / (uploadMs / 1000))}/s`
}

/** Fails the step with a titled error annotation (core.setFailed gives none), whatever was thrown. */
export function failStep(title: string, error: unknown): void {
  core.error(messageOf(error), { title })
  process.exitCode = 1
}
