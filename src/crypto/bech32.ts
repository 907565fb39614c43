/**
 * Bech32 (BIP 173), the encoding of age's keys: `age1…` recipients and `AGE-SECRET-KEY-1…`
 * identities. Unlike BIP 173, age sets no length limit (a post-quantum key is longer than 90).
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]

function polymod(values: readonly number[]): number {
  let check = 1
  for (const value of values) {
    const top = check >>> 25
    check = ((check & 0x1ffffff) << 5) ^ value
    for (let bit = 0; bit < 5; bit++) if ((top >>> bit) & 1) check ^= GENERATOR[bit] ?? 0
  }
  return check >>> 0
}

function expandPrefix(prefix: string): number[] {
  const codes = [...prefix].map(char => char.charCodeAt(0))
  return [...codes.map(code => code >>> 5), 0, ...codes.map(code => code & 31)]
}

/** Regroups bits: 8 to 5 pads the last group; 5 to 8 refuses leftover bits that are not zero padding. */
function regroup(values: Iterable<number>, from: number, to: number, pad: boolean): number[] | undefined {
  let accumulator = 0
  let bits = 0
  const out: number[] = []
  for (const value of values) {
    accumulator = (accumulator << from) | value
    bits += from
    while (bits >= to) {
      bits -= to
      out.push((accumulator >>> bits) & ((1 << to) - 1))
    }
    accumulator &= (1 << bits) - 1
  }
  if (pad && bits > 0) out.push((accumulator << (to - bits)) & ((1 << to) - 1))
  else if (!pad && (bits >= from || accumulator !== 0)) return undefined
  return out
}

/** `prefix` + `1` + the data and its checksum, lower case. */
export function encodeBech32(prefix: string, data: Uint8Array): string {
  const words = regroup(data, 8, 5, true) ?? []
  const checksum = polymod([...expandPrefix(prefix), ...words, 0, 0, 0, 0, 0, 0]) ^ 1
  const checkWords = Array.from({ length: 6 }, (_, index) => (checksum >>> (5 * (5 - index))) & 31)
  return `${prefix}1${[...words, ...checkWords].map(word => CHARSET[word]).join('')}`
}

/** The prefix (lower case) and data of a Bech32 string, or undefined when it is not one (mixed case, bad checksum). */
export function decodeBech32(text: string): { prefix: string; data: Buffer } | undefined {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return undefined
  const lower = text.toLowerCase()
  const separator = lower.lastIndexOf('1')
  if (separator < 1 || lower.length - separator - 1 < 6) return undefined
  const prefix = lower.slice(0, separator)
  if ([...prefix].some(char => char < '!' || char > '~')) return undefined
  const words: number[] = []
  for (const char of lower.slice(separator + 1)) {
    const word = CHARSET.indexOf(char)
    if (word < 0) return undefined
    words.push(word)
  }
  if (polymod([...expandPrefix(prefix), ...words]) !== 1) return undefined
  const data = regroup(words.slice(0, -6), 5, 8, false)
  return data ? { prefix, data: Buffer.from(data) } : undefined
}
