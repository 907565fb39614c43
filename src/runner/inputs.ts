/**
 * What every action's inputs share: how they are read, how problems are collected (so that one
 * InputError names every bad input at once), and the parsers of values common to several actions.
 */

/** Reads one input, trimmed; '' when unset (the runner has already applied action.yml defaults). */
export type InputReader<Name extends string = string> = (name: Name) => string

/** One bad input and what to do about it; collected, then thrown together as an InputError. */
export interface InputProblem {
  input: string
  message: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DURATION_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

export function isUuid(value: string): boolean {
  return UUID.test(value)
}

/** The lines of a multi-line input, trimmed, without blank lines and `#` comments. */
export function inputLines(raw: string): string[] {
  return raw
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
}

export function parseBoolean<Name extends string>(read: InputReader<Name>, input: Name, problems: InputProblem[]): boolean {
  const raw = read(input)
  if (raw === '' || /^false$/i.test(raw)) return false
  if (/^true$/i.test(raw)) return true
  problems.push({ input, message: `must be true or false, got '${clip(raw)}'.` })
  return false
}

/** `90m`, `6h`, `2d`, `1h30m` in milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+[smhd])+$/i.test(text)) return undefined
  let ms = 0
  for (const [, amount, unit] of text.toLowerCase().matchAll(/(\d+)([smhd])/g)) ms += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? 0)
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined
}

/** `500MiB`, `10 GB`, `2T`, `1048576` in bytes (binary units); undefined when it is not such a size. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim())
  if (!match) return undefined
  const bytes = Math.floor(Number(match[1]) * (BYTE_UNITS[(match[2] ?? '').toLowerCase()] ?? NaN))
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== ''
  } catch {
    return false
  }
}

/** Keeps echoed values short in messages. */
export function clip(value: string): string {
  const oneLine = value.replace(/[\r\n]+/g, ' ')
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine
}
