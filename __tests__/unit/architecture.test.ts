// The layout ARCHITECTURE.md describes, checked on the source: no import circles between modules or
// between parts, the actions imported by nothing shared, and entry files that only wire.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src')
const ACTIONS = ['backup', 'restore', 'sweep', 'prune']
const ENTRIES = ['backup/main.ts', 'backup/post.ts', 'restore/main.ts', 'sweep/main.ts', 'prune/main.ts']

const modules = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter(file => file.endsWith('.ts'))
  .map(file => file.split(path.sep).join('/'))
  .sort()

/** Each module's relative imports, as module paths under src/. */
const imports = new Map(
  modules.map(module => {
    const text = readFileSync(path.join(SRC, module), 'utf8')
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gm)].map(([, specifier]) =>
      path.posix.normalize(path.posix.join(path.posix.dirname(module), specifier ?? '')).replace(/\.js$/, '.ts')
    )
    return [module, targets]
  })
)

/** The part a module belongs to: its folder under src/ (sources/<name> for a source), or '.' for the few shared at the root. */
function partOf(module: string): string {
  const segments = module.split('/')
  if (segments.length === 1) return '.'
  return segments[0] === 'sources' ? segments.slice(0, 2).join('/') : (segments[0] as string)
}

/** A cycle in the graph, as the nodes it passes through, or undefined. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const trail: string[] = []
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined
    if (state.get(node) === 'open') return [...trail.slice(trail.indexOf(node)), node]
    state.set(node, 'open')
    trail.push(node)
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next)
      if (cycle) return cycle
    }
    trail.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of graph.keys()) {
    const cycle = visit(node)
    if (cycle) return cycle
  }
  return undefined
}

describe('architecture', () => {
  it('every relative import names a module under src/', () => {
    for (const [module, targets] of imports) {
      for (const target of targets) assert.ok(modules.includes(target), `${module} imports ${target}, which does not exist`)
    }
  })

  it('no module imports itself back through others', () => {
    const graph = new Map([...imports].map(([module, targets]) => [module, new Set(targets)]))
    const cycle = findCycle(graph)
    assert.equal(cycle, undefined, `import circle: ${cycle?.join(' -> ')}`)
  })

  it('the parts depend one way: no circle between folders', () => {
    const graph = new Map<string, Set<string>>()
    for (const [module, targets] of imports) {
      const from = partOf(module)
      const edges = graph.get(from) ?? new Set()
      for (const target of targets) if (partOf(target) !== from) edges.add(partOf(target))
      graph.set(from, edges)
    }
    const cycle = findCycle(graph)
    assert.equal(cycle, undefined, `circle between parts: ${cycle?.join(' -> ')}`)
  })

  it('no shared part imports an action', () => {
    for (const [module, targets] of imports) {
      if (ACTIONS.includes(partOf(module))) continue
      for (const target of targets) assert.ok(!ACTIONS.includes(partOf(target)), `${module} (shared) imports ${target} (an action)`)
    }
  })

  it('entry files only wire: no functions or classes of their own, a few lines each', () => {
    for (const entry of ENTRIES) {
      const text = readFileSync(path.join(SRC, entry), 'utf8')
      assert.doesNotMatch(text, /^\s*(export\s+)?(async\s+)?(function|class)\s/m, `${entry} declares logic`)
      assert.ok(text.trim().split('\n').length <= 15, `${entry} has ${text.trim().split('\n').length} lines`)
    }
  })
})
