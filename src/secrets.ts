import * as core from '@actions/core'

const registered = new Set<string>()

/** Masks a secret in the runner's log and remembers it so messages we write elsewhere are scrubbed too. */
export function registerSecret(value: string | undefined): void {
  if (!value) return
  core.setSecret(value)
  registered.add(value)
}

/**
 * Removes every registered secret, and anything shaped like a JWT or a bearer token, from text
 * that leaves the process other than through the masked log (error_text, summaries).
 */
export function redact(text: string): string {
  let clean = text
  for (const secret of registered) clean = clean.split(secret).join('***')
  return clean
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '***')
    .replace(/(Bearer|apikey[=:]?)\s+[^\s"',]+/gi, '$1 ***')
}
