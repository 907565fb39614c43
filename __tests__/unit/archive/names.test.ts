// File names as bytes (src/archive/names.ts): every byte string comes back from its string form,
// names that are UTF-8 stay ordinary strings, and messages show what is not printable unambiguously.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import {
  fsPath,
  isUtf8Name,
  nameByteLength,
  nameBytes,
  nameFromBytes,
  patternFor,
  quotedName,
  shownName,
  writeName
} from '../../../src/archive/names.js'

const bytes = (...values: number[]): Buffer => Buffer.from(values)
const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1')

it('keeps a UTF-8 name an ordinary string, and its bytes', () => {
  for (const name of ['plain.txt', 'ünïcødé ☃.txt', 'emoji 😀/x', 'a\nb', 'back\\slash']) {
    const raw = Buffer.from(name)
    assert.equal(nameFromBytes(raw), name)
    assert.equal(isUtf8Name(name), true)
    assert.deepEqual(nameBytes(name), raw)
    assert.equal(fsPath(name), name)
  }
})

it('gives back every byte string exactly, whatever it holds', () => {
  const samples = [
    latin1('caf\xe9.txt'),
    bytes(0xff),
    bytes(0x80, 0x2f, 0xfe),
    // Overlong, surrogate and past-U+10FFFF forms are not UTF-8: each of their bytes is kept.
    bytes(0xc0, 0xaf),
    bytes(0xed, 0xa0, 0x80),
    bytes(0xf4, 0x90, 0x80, 0x80),
    // Truncated sequences, at the end and before ASCII.
    bytes(0x61, 0xe2, 0x98),
    bytes(0xe2, 0x98, 0x61),
    // Valid characters beside invalid bytes, an astral one included.
    Buffer.concat([Buffer.from('😀'), bytes(0xdc), Buffer.from('é')])
  ]
  for (let seed = 1; seed < 200; seed++) {
    samples.push(Buffer.from(Array.from({ length: 1 + (seed % 13) }, (_, at) => (seed * 131 + at * 977) % 255 || 1)))
  }
  for (const raw of samples) {
    const name = nameFromBytes(raw)
    assert.deepEqual(nameBytes(name), raw, `round trip of ${raw.toString('hex')}`)
    assert.equal(nameByteLength(name), raw.length)
    const target = Buffer.alloc(raw.length + 2)
    assert.equal(writeName(target, name, 1), raw.length)
    assert.deepEqual(target.subarray(1, -1), raw)
    assert.deepEqual(fsPath(name), isUtf8Name(name) ? name : raw)
  }
})

it('gives distinct strings to distinct byte strings', () => {
  const names = new Set([latin1('\xff'), bytes(0xc3, 0xbf), Buffer.from('\\xff'), latin1('\xfe')].map(nameFromBytes))
  assert.equal(names.size, 4)
})

it('a path decodes to its segments joined: the form works per segment too', () => {
  const whole = nameFromBytes(Buffer.concat([latin1('d\xff/'), Buffer.from('é/'), latin1('\xe9')]))
  assert.equal(whole, [latin1('d\xff'), Buffer.from('é'), latin1('\xe9')].map(nameFromBytes).join('/'))
})

it('shows a name bare when it is printable UTF-8, quoted with escapes otherwise', () => {
  assert.equal(shownName('data/ünï cødé.txt'), 'data/ünï cødé.txt')
  assert.equal(shownName('data/back\\slash'), 'data/back\\slash')
  assert.equal(shownName(nameFromBytes(latin1('data/\xff.txt'))), '"data/\\xff.txt"')
  assert.equal(shownName('line\nbreak'), '"line\\nbreak"')
  assert.equal(shownName(nameFromBytes(latin1('a\\\xff'))), '"a\\\\\\xff"')
  assert.equal(shownName('"quoted"'), '"\\"quoted\\""')
  assert.equal(shownName('bell\x07'), '"bell\\x07"')
  // The escape of a byte and the same text typed out differ.
  assert.notEqual(shownName(nameFromBytes(latin1('\xff'))), shownName('\\xff'))
  assert.equal(quotedName('plain'), '"plain"')
  assert.equal(quotedName('😀'), '"😀"')
})

it('suggests a pattern that matches the name, with ? for what a workflow cannot spell', () => {
  assert.equal(patternFor(nameFromBytes(latin1('data/\xff\xfe.txt'))), 'data/??.txt')
  assert.equal(patternFor('data/a\nb'), 'data/a?b')
  assert.equal(patternFor('data/[x]*?.txt'), 'data/\\[x\\]\\*\\?.txt')
})
