import * as core from '@actions/core'
import type { InputReader } from './inputs.js'

const registered = new Set<string>()

/** Masks a secret in the runner's log and remembers it so messages we write elsewhere are scrubbed too. */
export function registerSecret(value: string | undefined): void {
  if (!value) return
  core.setSecret(value)
  registered.add(value)
}

/**
 * Removes every registered secret, and anything shaped like a JWT, a Supabase secret key or a
 * bearer token, from text that leaves the process other than through the masked log (error_text,
 * summaries).
 */
export function redact(text: string): string {
  let clean = text
  for (const secret of registered) clean = clean.split(secret).join('***')
  return clean
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '***')
    .replace(/sb_secret_[A-Za-z0-9_-]+/g, '***')
    .replace(/(Bearer|apikey[=:]?)\s+[^\s"',]+/gi, '$1 ***')
}

/** Masks every secret input before anything can print it, valid or not. */
export function maskSecretInputs<Name extends string>(read: InputReader<Name>, secretInputs: readonly Name[]): void {
  maskSecrets(secretInputs.map(name => read(name)))
}

/** Masks these values (empty ones are skipped). */
export function maskSecrets(values: readonly string[]): void {
  for (const value of new Set(values)) registerSecret(value)
}
