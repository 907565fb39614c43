/**
 * Every failure the action reports is one of these: the message is what the user reads in the
 * log and in the row's error_text, so it says what went wrong and what to do about it.
 */
export abstract class BackupError extends Error {
  abstract readonly kind: string
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** One or more inputs are invalid; `inputs` names each offending input. */
export class InputError extends BackupError {
  readonly kind = 'input'
  constructor(readonly problems: readonly { input: string; message: string }[]) {
    super(problems.map(p => `Input '${p.input}': ${p.message}`).join(' '))
  }
}

/** The row cannot be found, is ambiguous, or the database refused the request for a lasting reason. */
export class LedgerError extends BackupError {
  readonly kind = 'ledger'
  constructor(
    message: string,
    readonly transient = false,
    options?: { cause?: unknown }
  ) {
    super(message, options)
  }
}

/** Nothing matched `path`, a file vanished or changed while being read, or reading failed. */
export class ArchiveError extends BackupError {
  readonly kind = 'archive'
}

/** The database to back up or restore into: unreachable, refused, or its dump or restore failed. */
export class DatabaseError extends BackupError {
  readonly kind = 'database'
}

/** Supabase Storage (a source, or a restore's target) could not be listed, read or written. */
export class StorageError extends BackupError {
  readonly kind = 'storage'
}

/** The store refused or failed the upload (credentials, bucket, network, key taken). */
export class StoreError extends BackupError {
  readonly kind = 'store'
}

/** The object in the store does not match what was uploaded. */
export class VerificationError extends BackupError {
  readonly kind = 'verification'
}

/** An encrypted object cannot be opened: no identity or passphrase given fits it, or it fails authentication (altered, truncated). */
export class DecryptionError extends BackupError {
  readonly kind = 'decryption'
}

/** The runner asked the step to stop (cancellation or step timeout). */
export class CancelledError extends BackupError {
  readonly kind = 'cancelled'
  constructor(readonly signal: string) {
    super(`The run was cancelled (${signal}).`)
  }
}

/** The message of anything thrown, including values that are not Errors. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name
  if (typeof error === 'string') return error
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}
