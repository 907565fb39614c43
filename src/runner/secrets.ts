import * as core from '@actions/core'
import { Input, type InputReader } from '../backup/inputs.js'

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

/** Masks every secret input before anything can print it, valid or not. */
export function maskSecretInputs(read: InputReader): void {
  const secrets = [
    Input.SupabaseKey,
    Input.BackupApiKey,
    Input.AwsSecretAccessKey,
    Input.AwsSessionToken,
    Input.AwsAccessKeyId,
    Input.GithubToken
  ]
  for (const name of secrets) {
    registerSecret(read(name))
  }
}
