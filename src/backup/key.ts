import { DEFAULT_KEY_TEMPLATE } from './inputs.js'

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
