import { clip } from '../runner/inputs.js'

export const DEFAULT_KEY_TEMPLATE = 'backups/{yyyy}/{mm}/{dd}/backup-{timestamp}.{ext}'
const KEY_PLACEHOLDERS = new Set(['yyyy', 'mm', 'dd', 'timestamp', 'ext', 'dispatch_id', 'run_id', 'run_attempt', 'repo'])

export interface KeyContext {
  now: Date
  dispatchId: string
  runId: string
  runAttempt: string
  repository: string
  extension: string
}

/** `{timestamp}` is UTC `YYYYMMDDTHHMMSSZ`, as in the contract. */
export function utcTimestamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')
}

/**
 * Renders the object key. The default template also gets `-` and the dispatch id's first 8
 * hex digits before the extension, so parallel dispatches in the same second never collide.
 */
export function renderKey(template: string, context: KeyContext): string {
  const iso = context.now.toISOString()
  const values: Record<string, string> = {
    yyyy: iso.slice(0, 4),
    mm: iso.slice(5, 7),
    dd: iso.slice(8, 10),
    timestamp: utcTimestamp(context.now),
    ext: context.extension,
    dispatch_id: context.dispatchId,
    run_id: context.runId,
    run_attempt: context.runAttempt,
    repo: context.repository
  }
  const key = template.replace(/\{([a-z_]+)\}/g, (placeholder, name: string) => values[name] ?? placeholder)
  if (template !== DEFAULT_KEY_TEMPLATE) return key
  const suffix = `.${context.extension}`
  return `${key.slice(0, -suffix.length)}-${context.dispatchId.replace(/-/g, '').slice(0, 8)}${suffix}`
}

/** Why a `key` template is refused, or undefined when it is fine. */
export function keyTemplateProblem(template: string): string | undefined {
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    const name = match[1] ?? ''
    if (!KEY_PLACEHOLDERS.has(name)) {
      return `has an unknown placeholder {${clip(name)}}; use ${[...KEY_PLACEHOLDERS].map(p => `{${p}}`).join(', ')}.`
    }
  }
  if (/[{}]/.test(template.replace(/\{[a-z_]+\}/g, ''))) return 'has an unmatched { or }.'
  if (template.startsWith('/')) return "must not start with '/': S3 keys are relative to the bucket."
  if (template.endsWith('/')) return "must name an object, not end with '/'."
  // Control characters and backslashes break S3 listings and most tools that consume keys.
  if (/[\u0000-\u001f\u007f\\]/.test(template)) return 'must not contain control characters or backslashes.'
  if (template.split('/').some(segment => segment === '.' || segment === '..' || segment === '')) {
    return "must not contain empty, '.' or '..' path segments."
  }
  if (Buffer.byteLength(template) > 900) return 'is too long: S3 keys are at most 1024 bytes.'
  return undefined
}
