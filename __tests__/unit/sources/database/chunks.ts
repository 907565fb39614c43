// Feeding a filter its input in pieces, as a pipe would: at every byte offset, or at offsets drawn
// from a seeded generator, so that a failure replays.
import type { DumpFilter } from '../../../../src/sources/database/filters.js'

/** Everything a filter gives for `pieces`, pushed one by one, then its end, as one buffer. */
export function filtered(filter: DumpFilter, pieces: readonly Buffer[]): Buffer {
  const out: Buffer[] = []
  for (const piece of pieces) out.push(...filter.push(piece).map(part => Buffer.from(part)))
  out.push(...filter.end())
  return Buffer.concat(out)
}

/** `input` cut in two at each byte offset (0 and the end included: an empty piece must be harmless too). */
export function* cutsInTwo(input: Buffer): Generator<Buffer[]> {
  for (let at = 0; at <= input.length; at++) yield [input.subarray(0, at), input.subarray(at)]
}

/** `input` cut at `count` offsets from a seeded generator: pieces of 0 to a few dozen bytes. */
export function randomCuts(input: Buffer, seed: number, count: number): Buffer[] {
  const random = mulberry32(seed)
  const offsets = Array.from({ length: count }, () => Math.floor(random() * (input.length + 1))).sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let from = 0
  for (const offset of [...offsets, input.length]) {
    pieces.push(input.subarray(from, offset))
    from = offset
  }
  return pieces
}

/** `input` one byte at a time. */
export function bytewise(input: Buffer): Buffer[] {
  return Array.from({ length: input.length }, (_, at) => input.subarray(at, at + 1))
}

/** A small seeded PRNG (mulberry32): numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
