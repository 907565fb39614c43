// Lent pieces and freed buffers (src/buffers.ts): what is freed is gone at once, what is shared never is.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { BufferPool, Gather, Scratch, free } from '../../../src/archive/buffers.js'

it('frees a buffer that owns its memory at once: it reads as empty afterwards', () => {
  const owned = Buffer.allocUnsafeSlow(1024 * 1024).fill(7)
  const view = owned.subarray(10, 20)
  free([view])
  assert.equal(owned.buffer.detached, true)
  assert.equal(owned.length, 0)
})

it('frees buffers smaller than the pool that Node did not cut from it (a 32 KiB dictionary, a 48 KiB sample)', () => {
  // Node 24 cuts only allocations under half of Buffer.poolSize from the pool; these have their own memory.
  const dictionary = Buffer.from(Buffer.alloc(32 * 1024, 1))
  const sample = Buffer.concat([Buffer.alloc(16 * 1024), Buffer.alloc(32 * 1024)])
  free([dictionary, sample])
  assert.equal(dictionary.buffer.detached, true)
  assert.equal(sample.buffer.detached, true)
})

it("never frees buffers cut from Node's shared pool, whose neighbours belong to others", () => {
  const small = Buffer.from('a header')
  const neighbour = Buffer.from(new Uint8Array(64))
  free([small, neighbour])
  assert.equal(small.toString(), 'a header')
  assert.equal(neighbour.length, 64)
  assert.equal(small.buffer.detached, false)
})

it('never frees shared memory (the reader slots, the parts): other threads use it', () => {
  const part = Buffer.from(new SharedArrayBuffer(Buffer.poolSize * 4))
  free([part])
  assert.equal(part.length, Buffer.poolSize * 4)
})

it('reuses the buffers given back, including a last, shorter view of one', () => {
  const pool = new BufferPool(64 * 1024)
  const first = pool.take()
  pool.giveBack(first.subarray(0, 100))
  const again = pool.take()
  assert.equal(again.length, 64 * 1024)
  assert.equal(again.buffer, first.buffer)
})

it('hands out zeroed scratch space, reused, and larger when a record needs it', () => {
  const scratch = new Scratch()
  const first = scratch.zeroed(512).fill(9)
  const again = scratch.zeroed(512)
  assert.ok(again.equals(Buffer.alloc(512)))
  assert.equal(again.buffer, first.buffer)
  assert.ok(scratch.zeroed(5000).equals(Buffer.alloc(5000)))
})

it('gathers small pieces into one, in order, and hands large ones on as they are', () => {
  const gather = new Gather()
  const handedOn: Buffer[] = []
  // As the archive writers use it: what is handed on is copied before the next piece comes.
  const add = (piece: Buffer): void => {
    const gathered = gather.before(piece)
    if (gathered) handedOn.push(Buffer.from(gathered))
    if (!gather.keep(piece)) handedOn.push(Buffer.from(piece))
  }
  const small = Array.from({ length: 600 }, (_, index) => Buffer.alloc(1000, index % 251))
  const large = Buffer.alloc(100 * 1024, 7)
  for (const piece of [...small.slice(0, 300), large, ...small.slice(300)]) add(piece)
  const rest = gather.take()
  if (rest) handedOn.push(Buffer.from(rest))
  assert.ok(Buffer.concat(handedOn).equals(Buffer.concat([...small.slice(0, 300), large, ...small.slice(300)])))
  assert.ok(handedOn.length < 10, `${handedOn.length} pieces handed on for 601`)
  assert.ok(handedOn.some(piece => piece.equals(large)))
})
