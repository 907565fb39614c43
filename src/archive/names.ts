import { isUtf8 } from 'node:buffer'

/**
 * File names are bytes. Linux allows any bytes but `/` and NUL in a name, not only UTF-8, and a
 * backup must keep them all. Names still travel as strings (patterns, maps, messages), in a form
 * that loses nothing, Python's "surrogateescape" (PEP 383): a name that is UTF-8 is its usual
 * string; each byte that is not part of valid UTF-8 becomes the lone surrogate U+DC80 to U+DCFF
 * (U+DC00 + the byte). Valid UTF-8 never decodes to a lone surrogate, so the form is one to one.
 * Such a string is not well formed: Node would write it with U+FFFD in place of the bytes, so
 * every file system call takes `fsPath(name)` and every archive header `nameBytes(name)`.
 */

const ESCAPE_BASE = 0xdc00
const FIRST_ESCAPE = ESCAPE_BASE + 0x80
const LAST_ESCAPE = ESCAPE_BASE + 0xff

/** The name that `bytes` spell (a whole path or one segment); lossless whatever the bytes are. */
export function nameFromBytes(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : decodeEscaping(bytes)
}

/** True when the name's bytes are valid UTF-8 (its string holds no escaped byte). */
export function isUtf8Name(name: string): boolean {
  return name.isWellFormed()
}

/** The name's bytes, exactly as the file system has them. */
export function nameBytes(name: string): Buffer {
  return name.isWellFormed() ? Buffer.from(name, 'utf8') : encodeEscaped(name)
}

/** How many bytes the name has. */
export function nameByteLength(name: string): number {
  return name.isWellFormed() ? Buffer.byteLength(name) : encodeEscaped(name).length
}

/** Writes the name's bytes into `target` at `offset`; returns how many were written (`target` must have room). */
export function writeName(target: Buffer, name: string, offset: number): number {
  return name.isWellFormed() ? target.write(name, offset) : encodeEscaped(name).copy(target, offset)
}

/** The path to give `fs`: the string itself when it is UTF-8, its bytes otherwise. */
export function fsPath(name: string): string | Buffer {
  return name.isWellFormed() ? name : encodeEscaped(name)
}

/**
 * A name for a message, unambiguous whatever it holds: as it is when it is printable UTF-8;
 * otherwise in double quotes, with `\xNN` for each byte that is not UTF-8, `\n`, `\t` and `\xNN`
 * for control characters, and `\\`, `\"` for themselves. A name shown bare never holds an escape.
 */
export function shownName(name: string): string {
  return name.isWellFormed() && !NEEDS_QUOTES.test(name) ? name : quotedName(name)
}

/** The name in double quotes with the escapes of shownName: for messages that always quote. */
export function quotedName(name: string): string {
  let shown = '"'
  for (let at = 0; at < name.length; at++) {
    const code = name.charCodeAt(at)
    if (code >= FIRST_ESCAPE && code <= LAST_ESCAPE && !isPaired(name, at)) shown += `\\x${hex(code - ESCAPE_BASE)}`
    else if (code === 0x5c) shown += '\\\\'
    else if (code === 0x22) shown += '\\"'
    else if (code === 0x0a) shown += '\\n'
    else if (code === 0x09) shown += '\\t'
    else if (code === 0x0d) shown += '\\r'
    else if (code < 0x20 || code === 0x7f) shown += `\\x${hex(code)}`
    else if (code >= 0x80 && code <= 0x9f) shown += `\\u${code.toString(16).padStart(4, '0')}`
    else shown += name[at]
  }
  return `${shown}"`
}

/**
 * A `path` line that matches exactly this name, for a message that suggests excluding it: glob
 * characters escaped, and `?` (any one character) for what a workflow file cannot spell: a byte
 * that is not UTF-8, a line break or another control character.
 */
export function patternFor(name: string): string {
  let pattern = ''
  for (let at = 0; at < name.length; at++) {
    const code = name.charCodeAt(at)
    if ((code >= FIRST_ESCAPE && code <= LAST_ESCAPE && !isPaired(name, at)) || code < 0x20 || code === 0x7f) pattern += '?'
    else if ('*?[]\\'.includes(name[at] as string)) pattern += `\\${name[at]}`
    else pattern += name[at]
  }
  return pattern
}

/** Control characters (C0, DEL, C1) and a leading quote: a name with one is shown quoted. */
const NEEDS_QUOTES = /[\u0000-\u001f\u007f-\u009f]|^"/

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0')
}

/** True when the low surrogate at `at` is the second half of a pair (a real character, not a byte). */
function isPaired(name: string, at: number): boolean {
  const before = at > 0 ? name.charCodeAt(at - 1) : 0
  return before >= 0xd800 && before <= 0xdbff
}

/** Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF), each invalid byte escaped. */
function decodeEscaping(bytes: Buffer): string {
  let name = ''
  for (let at = 0; at < bytes.length;) {
    const length = validSequenceAt(bytes, at)
    if (length === 0) {
      name += String.fromCharCode(ESCAPE_BASE + (bytes[at] as number))
      at += 1
    } else {
      name += bytes.toString('utf8', at, at + length)
      at += length
    }
  }
  return name
}

/** Bytes of the valid UTF-8 sequence that starts at `at`, or 0 when none does. */
function validSequenceAt(bytes: Buffer, at: number): number {
  const first = bytes[at] as number
  if (first < 0x80) return 1
  const continuation = (offset: number, low = 0x80, high = 0xbf): boolean => {
    const byte = bytes[at + offset]
    return byte !== undefined && byte >= low && byte <= high
  }
  if (first >= 0xc2 && first <= 0xdf) return continuation(1) ? 2 : 0
  if (first >= 0xe0 && first <= 0xef) {
    // E0 needs A0..BF (no overlong form), ED needs 80..9F (no surrogate).
    const low = first === 0xe0 ? 0xa0 : 0x80
    const high = first === 0xed ? 0x9f : 0xbf
    return continuation(1, low, high) && continuation(2) ? 3 : 0
  }
  if (first >= 0xf0 && first <= 0xf4) {
    const low = first === 0xf0 ? 0x90 : 0x80
    const high = first === 0xf4 ? 0x8f : 0xbf
    return continuation(1, low, high) && continuation(2) && continuation(3) ? 4 : 0
  }
  return 0
}

function encodeEscaped(name: string): Buffer {
  const bytes: number[] = []
  for (let at = 0; at < name.length; at++) {
    const code = name.charCodeAt(at)
    if (code >= 0xd800 && code <= 0xdbff && at + 1 < name.length) {
      const next = name.charCodeAt(at + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        for (const byte of Buffer.from(name.slice(at, at + 2), 'utf8')) bytes.push(byte)
        at += 1
        continue
      }
    }
    if (code >= FIRST_ESCAPE && code <= LAST_ESCAPE) bytes.push(code - ESCAPE_BASE)
    else if (code >= 0xd800 && code <= 0xdfff) {
      // Only nameFromBytes makes lone surrogates, and only these: anything else is a bug upstream.
      throw new Error(`A name holds the lone surrogate U+${code.toString(16)}, which stands for no byte.`)
    } else if (code < 0x80) bytes.push(code)
    else for (const byte of Buffer.from(name[at] as string, 'utf8')) bytes.push(byte)
  }
  return Buffer.from(bytes)
}
