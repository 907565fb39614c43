// Tests of the runner emulator itself, against a tiny fake action (__tests__/harness/fixtures/emulator-probe.mjs).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { copyFile, mkdtemp, realpath, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'

import {
  applyMasks,
  evaluatePostIf,
  inputEnvName,
  loadActionManifest,
  parseKeyValueFile,
  parseWorkflowCommand,
  runHook,
  runJob
} from './runner.js'
import type { CommonRunOptions, HookResult, SentSignal } from './runner.js'
import { listTree, makeWorkspace, randomBytesSeeded } from './workspace.js'
import type { Workspace } from './workspace.js'

const PROBE = path.join(import.meta.dirname, 'fixtures', 'emulator-probe.mjs')

const ACTION_YML = `name: emulator probe
description: fake action for the runner emulator test
inputs:
  dispatch-id:
    description: row id
    required: true
  mode:
    description: main behaviour
    default: normal
  post-mode:
    default: normal
  retry count:
    default: 3
  bucket:
    default: 'probe-bucket'
  secret:
    required: false
runs:
  using: node24
  main: main.mjs
  post: post.mjs
`

let actionDir = ''
let ws: Workspace

/** The JSON the probe prints after `tag `. */
function probeJson(r: HookResult, tag: 'probe-main' | 'probe-post'): Record<string, unknown> {
  const line = r.stdoutLines.find(l => l.startsWith(`${tag} `))
  assert.ok(line, `no ${tag} line in stdout:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(line.slice(tag.length + 1)) as Record<string, unknown>
}

function sigs(r: HookResult): Array<SentSignal['signal']> {
  return r.signalsSent.map(s => s.signal)
}

function at(r: HookResult, signal: SentSignal['signal']): number {
  const s = r.signalsSent.find(x => x.signal === signal)
  assert.ok(s, `${signal} not sent`)
  return s.atMs
}

function base(): CommonRunOptions {
  return { actionDir, workspace: ws.dir }
}

before(async () => {
  actionDir = await mkdtemp(path.join(os.tmpdir(), 'gha-probe-action-'))
  await writeFile(path.join(actionDir, 'action.yml'), ACTION_YML)
  await copyFile(PROBE, path.join(actionDir, 'main.mjs'))
  await copyFile(PROBE, path.join(actionDir, 'post.mjs'))
  ws = await makeWorkspace({ files: { 'data/a.txt': 'hello\n' } })
})

after(async () => {
  await rm(actionDir, { recursive: true, force: true })
  await ws.cleanup()
})

describe('action.yml and inputs', () => {
  it('parses the manifest with defaults as strings and post-if always()', async () => {
    const m = await loadActionManifest(actionDir)
    assert.equal(m.runs.using, 'node24')
    assert.equal(m.runs.post, 'post.mjs')
    assert.equal(m.runs.postIf, 'always()')
    assert.equal(m.inputs['retry count']?.default, '3')
    assert.equal(m.inputs['dispatch-id']?.required, true)
    assert.equal(m.inputs['dispatch-id']?.default, undefined)
    assert.equal(inputEnvName('dispatch-id'), 'INPUT_DISPATCH-ID')
    assert.equal(inputEnvName('retry count'), 'INPUT_RETRY_COUNT')
    assert.equal(evaluatePostIf('always()', 'cancelled'), true)
    assert.equal(evaluatePostIf('${{ success() }}', 'failure'), false)
  })

  it('runs main with INPUT_* (dashes kept, defaults applied), runner env, outputs, state, commands', async () => {
    const r = await runHook({ ...base(), inputs: { 'dispatch-id': 'd-42', secret: 's3cr3t', extra: 1 } })
    assert.equal(r.exitCode, 0, r.stderr)
    assert.equal(r.conclusion, 'success')
    assert.deepEqual(r.signalsSent, [])
    assert.equal(r.exitedBeforeSigterm, true)

    const j = probeJson(r, 'probe-main')
    const inputs = j['inputs'] as Record<string, string>
    assert.equal(inputs['INPUT_DISPATCH-ID'], 'd-42')
    assert.equal(inputs['INPUT_MODE'], 'normal')
    assert.equal(inputs['INPUT_POST-MODE'], 'normal')
    assert.equal(inputs['INPUT_RETRY_COUNT'], '3')
    assert.equal(inputs['INPUT_BUCKET'], 'probe-bucket')
    assert.equal(inputs['INPUT_SECRET'], 's3cr3t')
    assert.equal(inputs['INPUT_EXTRA'], '1')
    assert.ok(!('INPUT_DISPATCH_ID' in inputs))
    assert.equal(j['cwd'], await realpath(ws.dir))
    const env = j['env'] as Record<string, string>
    for (const k of [
      'GITHUB_RUN_ID',
      'GITHUB_RUN_ATTEMPT',
      'GITHUB_REPOSITORY',
      'GITHUB_SHA',
      'GITHUB_REF',
      'GITHUB_WORKFLOW',
      'GITHUB_JOB',
      'GITHUB_ACTION',
      'GITHUB_SERVER_URL',
      'GITHUB_API_URL',
      'RUNNER_TEMP',
      'GITHUB_STATE',
      'GITHUB_OUTPUT',
      'GITHUB_STEP_SUMMARY',
      'GITHUB_ENV',
      'GITHUB_PATH',
      'HOME'
    ]) {
      assert.ok(env[k], `${k} missing`)
    }
    assert.equal(env['GITHUB_WORKSPACE'], path.resolve(ws.dir))
    assert.equal(env['RUNNER_OS'], 'Linux')
    assert.equal(env['CI'], 'true')
    assert.equal(env['GITHUB_ACTIONS'], 'true')
    assert.match(r.runnerWarnings.join('\n'), /Unexpected input\(s\) 'extra'/)

    assert.deepEqual(r.state, { 'dispatch-id': 'd-42', multi: 'line1\nline2' })
    assert.deepEqual(r.outputs, { result: 'bucket=probe-bucket', legacy: 'plain value' })
    assert.deepEqual(r.envFile, { PROBE_FROM_MAIN: 'yes' })
    assert.deepEqual(r.pathFile, ['/probe/bin'])
    assert.equal(r.summary, '### probe summary\n')
    assert.deepEqual(r.fileCommandErrors, [])

    const byName = (c: string) => r.commands.filter(x => x.command === c)
    assert.deepEqual(
      byName('notice').map(c => [c.properties, c.message]),
      [[{ title: 'Probe' }, 'hello']]
    )
    assert.deepEqual(
      byName('warning').map(c => c.message),
      ['careful']
    )
    assert.deepEqual(
      byName('error').map(c => [c.properties, c.message]),
      [[{ title: 'Bad, thing', file: 'a.ts' }, 'msg\nline2']]
    )
    assert.deepEqual(
      byName('debug').map(c => [c.stream, c.message]),
      [['stderr', 'from stderr']]
    )
    assert.deepEqual(r.masks, ['s3cr3t'])
    // Raw output is kept; masking only applies to the shown log.
    assert.ok(r.stdout.includes('s3cr3t'))
    assert.ok(!applyMasks(r.stdout, r.masks).includes('s3cr3t'))
  })

  it('marks a non-zero exit as failure', async () => {
    const r = await runHook({ ...base(), inputs: { mode: 'fail' } })
    assert.equal(r.exitCode, 1)
    assert.equal(r.conclusion, 'failure')
  })
})

describe('main + post', () => {
  it('passes main state to post as STATE_*, re-evaluates inputs, fresh GITHUB_OUTPUT, carries GITHUB_ENV/PATH', async () => {
    const { main, post, jobStatus } = await runJob({ ...base(), inputs: { 'dispatch-id': 'd-7' } })
    assert.equal(jobStatus, 'success')
    assert.ok(post)
    assert.equal(post.conclusion, 'success', post.stderr)
    const j = probeJson(post, 'probe-post')
    assert.deepEqual(j['state'], { 'STATE_dispatch-id': 'd-7', STATE_multi: 'line1\nline2' })
    assert.equal((j['inputs'] as Record<string, string>)['INPUT_DISPATCH-ID'], 'd-7')
    assert.equal((j['inputs'] as Record<string, string>)['INPUT_RETRY_COUNT'], '3')
    assert.equal(j['fromMain'], 'yes')
    assert.equal(j['firstPath'], '/probe/bin')
    assert.deepEqual(post.outputs, { 'post-saw': '' })
    assert.equal(main.runnerTemp, post.runnerTemp)
  })

  it('skipPost emulates a lost VM', async () => {
    const r = await runJob({ ...base(), skipPost: true })
    assert.equal(r.post, null)
    assert.match(r.postSkippedReason ?? '', /skipPost/)
  })
})

describe('cancellation ladder', () => {
  it('SIGINT -> SIGTERM -> SIGKILL for a probe that ignores both; state written before the kill reaches post', async () => {
    const { main, post, jobStatus } = await runJob({
      ...base(),
      inputs: { mode: 'ignore-all', 'dispatch-id': 'd-1' },
      cancelAt: s => s.waitForState('phase', 'uploading'),
      intToTermMs: 300,
      termToKillMs: 200
    })
    assert.deepEqual(sigs(main), ['SIGINT', 'SIGTERM', 'SIGKILL'])
    const dTerm = at(main, 'SIGTERM') - at(main, 'SIGINT')
    const dKill = at(main, 'SIGKILL') - at(main, 'SIGTERM')
    assert.ok(dTerm >= 290 && dTerm < 1500, `SIGTERM ${dTerm} ms after SIGINT`)
    assert.ok(dKill >= 190 && dKill < 1500, `SIGKILL ${dKill} ms after SIGTERM`)
    assert.equal(main.signal, 'SIGKILL')
    assert.equal(main.exitCode, null)
    assert.equal(main.conclusion, 'cancelled')
    assert.equal(jobStatus, 'cancelled')
    assert.equal(main.exitedBeforeSigterm, false)
    assert.equal(main.triggers[0]?.kind, 'cancel')
    assert.equal(main.triggers[0]?.status, 'fired')
    assert.ok(main.stdout.includes('probe: ignoring SIGINT') && main.stdout.includes('probe: ignoring SIGTERM'))
    assert.equal(main.state['phase'], 'uploading')
    assert.ok(post, 'post runs after a cancel (post-if: always())')
    assert.equal((probeJson(post, 'probe-post')['state'] as Record<string, string>)['STATE_phase'], 'uploading')
    assert.deepEqual(post.signalsSent, [], 'post is not interrupted by SIGINT')
  })

  it('stops at SIGTERM when the probe exits on SIGTERM', async () => {
    const r = await runHook({
      ...base(),
      inputs: { mode: 'ignore-sigint' },
      cancelAt: s => s.waitForStdout(/probe: ready/),
      intToTermMs: 300,
      termToKillMs: 200
    })
    assert.deepEqual(sigs(r), ['SIGINT', 'SIGTERM'])
    assert.equal(r.state['interrupted'], 'SIGTERM')
    assert.equal(r.exitCode, 1)
    assert.equal(r.conclusion, 'cancelled')
  })

  it('sends only SIGINT to a probe that handles it and exits quickly (default 7.5 s ladder)', async () => {
    const r = await runHook({
      ...base(),
      inputs: { mode: 'handle-sigint' },
      cancelAt: s => s.waitForStdout(/probe: ready/)
    })
    assert.deepEqual(sigs(r), ['SIGINT'])
    assert.equal(r.exitedBeforeSigterm, true)
    assert.equal(r.state['interrupted'], 'SIGINT')
    assert.equal(r.state['phase'], 'uploading')
    assert.equal(r.conclusion, 'cancelled')
    assert.ok(r.durationMs < 3000, `took ${r.durationMs} ms`)
  })

  it('waitForState fires only once the entry is in the state file', async () => {
    const r = await runHook({
      ...base(),
      inputs: { mode: 'handle-sigint' },
      cancelAt: async s => {
        const v = await s.waitForState('phase')
        assert.equal(v, 'uploading')
        assert.equal((await s.readState())['phase'], 'uploading')
      }
    })
    assert.deepEqual(sigs(r), ['SIGINT'])
    // The probe writes `phase` ~100 ms after start; the trigger cannot have fired before.
    assert.ok(at(r, 'SIGINT') >= 90, `SIGINT at ${at(r, 'SIGINT')} ms`)
    assert.equal(r.state['phase'], 'uploading')
  })

  it('ignores (and records) a trigger that fires after the process exited', async () => {
    const r = await runHook({ ...base(), cancelAt: s => s.waitForStdout(/never printed/) })
    assert.equal(r.conclusion, 'success')
    assert.deepEqual(r.signalsSent, [])
    assert.equal(r.triggers.length, 1)
    assert.equal(r.triggers[0]?.status, 'ignored')
  })

  it('a step timeout uses the same ladder and fails the step', async () => {
    // The timeout counts from the step's start, not from the probe's readiness: it must leave node
    // time to start and install its handler (300 ms did not, on a loaded 2-core machine).
    const r = await runHook({ ...base(), inputs: { mode: 'ignore-sigint' }, timeoutMs: 2_000, intToTermMs: 200, termToKillMs: 200 })
    assert.match(r.stdout, /probe: ready/)
    assert.deepEqual(sigs(r), ['SIGINT', 'SIGTERM'])
    assert.ok(at(r, 'SIGINT') >= 1_990, `SIGINT at ${at(r, 'SIGINT')} ms`)
    assert.equal(r.signalsSent[0]?.reason, 'timeout')
    assert.equal(r.conclusion, 'failure')
  })

  it('killAt: SIGKILL outright, no post in runJob, state still usable by a separate post', async () => {
    const job = await runJob({
      ...base(),
      inputs: { mode: 'ignore-all', 'dispatch-id': 'd-9' },
      killAt: s => s.waitForState('phase', v => v === 'uploading')
    })
    assert.deepEqual(sigs(job.main), ['SIGKILL'])
    assert.equal(job.main.signal, 'SIGKILL')
    assert.equal(job.main.conclusion, 'failure')
    assert.equal(job.post, null)
    assert.match(job.postSkippedReason ?? '', /worker lost/)
    assert.deepEqual(job.main.state, { 'dispatch-id': 'd-9', multi: 'line1\nline2', phase: 'uploading' })

    const post = await runHook({ ...base(), hook: 'post', inputs: { 'dispatch-id': 'd-9' }, state: job.main.state })
    assert.equal(post.conclusion, 'success')
    const st = probeJson(post, 'probe-post')['state'] as Record<string, string>
    assert.equal(st['STATE_phase'], 'uploading')
    assert.equal(st['STATE_dispatch-id'], 'd-9')
    assert.deepEqual(post.outputs, { 'post-saw': 'uploading' })
  })

  it('after a cancel, post is killed when the cancel budget runs out', async () => {
    const { main, post } = await runJob({
      ...base(),
      inputs: { mode: 'handle-sigint', 'post-mode': 'hang' },
      cancelAt: s => s.waitForState('phase'),
      cancelBudgetMs: 500
    })
    assert.equal(main.conclusion, 'cancelled')
    assert.ok(post)
    assert.deepEqual(
      post.signalsSent.map(s => [s.signal, s.reason]),
      [['SIGKILL', 'cancel-budget']]
    )
    assert.equal(post.conclusion, 'failure')
    assert.ok(post.durationMs < 2000)
  })
})

describe('file and workflow command parsing', () => {
  it('parses heredoc and key=value like the runner', () => {
    const d = 'ghadelimiter_x'
    const text = `a<<${d}\n1\n\n2\n${d}\nb=x=y\n\nc<<${d}\n${d}\nk<<EOF\r\nv\r\nEOF\r\n`
    assert.deepEqual(parseKeyValueFile(text), { entries: { a: '1\n\n2', b: 'x=y', c: '', k: 'v\r' }, error: null })
    const cut = `a=1\nb<<${d}\npartial`
    assert.deepEqual(parseKeyValueFile(cut, true), { entries: { a: '1' }, error: null })
    assert.match(parseKeyValueFile(cut).error ?? '', /Matching delimiter not found/)
    assert.deepEqual(parseKeyValueFile('=v\n').entries, {})
    assert.match(parseKeyValueFile('=v\n').error ?? '', /Name must not be empty/)
    assert.match(parseKeyValueFile('junk\n').error ?? '', /Invalid format/)
  })

  it('parses workflow commands', () => {
    assert.deepEqual(parseWorkflowCommand('  ::ERROR file=x%3Ay,line=3::a%25b'), {
      command: 'error',
      properties: { file: 'x:y', line: '3' },
      message: 'a%b',
      raw: '  ::ERROR file=x%3Ay,line=3::a%25b'
    })
    assert.equal(parseWorkflowCommand('::unknown::x'), null)
    assert.equal(parseWorkflowCommand('plain ::error::x'), null)
  })
})

describe('workspace fixtures', () => {
  it('generates deterministic files, symlinks, dirs and lists them without following links', async () => {
    const big = 3 * 1024 * 1024 + 3
    const w = await makeWorkspace({
      files: {
        'a.txt': 'A\n',
        'bin/blob.bin': Buffer.from([0, 1, 2]),
        'big/rand.bin': { size: big, seed: 7 },
        'big/odd.bin': { size: 5 },
        '.hidden/.env': 'X=1\n',
        'empty-dir': { dir: true },
        'link-to-a': { symlink: 'a.txt' },
        dangling: { symlink: 'nope/missing' },
        'run.sh': { content: '#!/bin/sh\n', mode: 0o755 }
      }
    })
    try {
      const tree = await w.listTree()
      assert.deepEqual(
        [...tree.keys()],
        [
          '.hidden',
          '.hidden/.env',
          'a.txt',
          'big',
          'big/odd.bin',
          'big/rand.bin',
          'bin',
          'bin/blob.bin',
          'dangling',
          'empty-dir',
          'link-to-a',
          'run.sh'
        ]
      )
      const rand = tree.get('big/rand.bin')
      assert.equal(rand?.type, 'file')
      assert.equal(rand?.size, big)
      assert.equal(rand?.sha256, createHash('sha256').update(randomBytesSeeded(7, big)).digest('hex'))
      assert.notEqual(tree.get('big/odd.bin')?.sha256, createHash('sha256').update(randomBytesSeeded(7, 5)).digest('hex'))
      assert.deepEqual(randomBytesSeeded(7, 10), randomBytesSeeded(7, 10))
      assert.deepEqual(randomBytesSeeded(7, 64).subarray(0, 10), randomBytesSeeded(7, 10))
      assert.notDeepEqual(randomBytesSeeded(7, 16), randomBytesSeeded(8, 16))
      assert.equal(tree.get('link-to-a')?.type, 'symlink')
      assert.equal(tree.get('link-to-a')?.target, 'a.txt')
      assert.equal(tree.get('dangling')?.type, 'symlink')
      assert.equal(tree.get('empty-dir')?.type, 'dir')
      assert.equal(tree.get('run.sh')?.mode, 0o755)
      assert.deepEqual(await listTree(w.dir), tree)
      // Same spec, same content.
      const w2 = await makeWorkspace({ files: { 'big/odd.bin': { size: 5 } } })
      assert.equal((await w2.listTree()).get('big/odd.bin')?.sha256, tree.get('big/odd.bin')?.sha256)
      await w2.cleanup()
      await assert.rejects(makeWorkspace({ files: { '../escape': 'x' } }), /escapes/)
    } finally {
      await w.cleanup()
    }
    await assert.rejects(stat(w.dir), { code: 'ENOENT' })
  })
})
