import * as core from '@actions/core'
import type { InputReader } from './inputs.js'

const registered = new Set<string>()

/**
 * A secret shorter than this is only removed where it stands as a whole token: replaced inside
 * words, a 3-character password would turn "the backup failed" into "the ***kup failed".
 */
export const WHOLE_TOKEN_BELOW = 8

/** A letter or digit next to a short secret makes it part of a longer word; punctuation (`:`, `@`, `.`) does not. */
const WORD_CHAR = '[\\p{L}\\p{N}]'

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Replaces one secret: anywhere when it is long enough to be unique, else only as a whole token. */
function removeSecret(text: string, secret: string): string {
  if (secret.length >= WHOLE_TOKEN_BELOW) return text.split(secret).join('***')
  return text.replace(new RegExp(`(?<!${WORD_CHAR})${escapeRegExp(secret)}(?!${WORD_CHAR})`, 'gu'), '***')
}

/** Masks a secret in the runner's log and remembers it so messages we write elsewhere are scrubbed too. */
export function registerSecret(value: string | undefined): void {
  if (!value) return
  core.setSecret(value)
  registered.add(value)
}

/**
 * Removes every registered secret (a short one only where it is a whole word), and anything
 * shaped like a JWT, a Supabase secret key, an age identity or a bearer token, from text that leaves the process
 * other than through the masked log (error_text, summaries).
 */
export function redact(text: string): string {
  let clean = text
  // Longest first, so a secret that contains a shorter one is removed whole.
  for (const secret of [...registered].sort((a, b) => b.length - a.length)) clean = removeSecret(clean, secret)
  return clean
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '***')
    .replace(/sb_secret_[A-Za-z0-9_-]+/g, '***')
    .replace(/AGE-SECRET-KEY-1[0-9A-Z]+/gi, '***')
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
