/**
 * The program's command list against the files in commands/, and that the
 * CLI loads and `evaluate` runs with @medseg/torch unresolvable (a machine
 * without libtorch): every command module must keep the engine out of its
 * top-level imports.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dataPath, repoRoot } from '../testing/data.ts';
import { EXIT_OK } from './errors.ts';
import { createProgram } from './program.ts';

test('every command file in commands/ is registered, once, under its file name', () => {
  const files = readdirSync(new URL('./commands/', import.meta.url))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
  const names = createProgram()
    .commands.map((c) => c.name())
    .filter((n) => n !== 'help');
  assert.deepEqual([...names].sort(), files);
});

test('without the native engine the CLI still lists every command and evaluate works', { timeout: 120_000 }, () => {
  // A resolve hook, registered after tsx so that it runs first, that fails @medseg/torch as if it were not installed.
  const hooks = `export async function resolve(specifier, context, next) {
    if (specifier === '@medseg/torch' || specifier.startsWith('@medseg/torch/')) {
      throw Object.assign(new Error("Cannot find package '@medseg/torch' (hidden by program.test.ts)"), { code: 'ERR_MODULE_NOT_FOUND' });
    }
    return next(specifier, context);
  }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const medseg = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, 'packages/medseg/src/cli/main.ts', ...args],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, MEDSEG_DEBUG: '' },
        timeout: 100_000,
      },
    );

  const help = medseg('--help');
  assert.equal(help.status, EXIT_OK, help.stderr);
  for (const name of ['evaluate', 'report', 'plan', 'train', 'predict', 'demo', 'import'])
    assert.match(help.stdout, new RegExp(`^  ${name}\\b`, 'm'), `${name} in --help`);

  const tmp = mkdtempSync(join(tmpdir(), 'medseg-notorch-'));
  try {
    for (const d of ['pred', 'ref']) {
      mkdirSync(join(tmp, d));
      copyFileSync(dataPath('msd-hippocampus', 'labels', 'hippocampus_001.nii.gz'), join(tmp, d, 'hippocampus_001.nii.gz'));
    }
    const ev = medseg('evaluate', join(tmp, 'pred'), join(tmp, 'ref'), '--out', join(tmp, 'eval'), '--json');
    assert.equal(ev.status, EXIT_OK, ev.stderr);
    const res = JSON.parse(ev.stdout) as { ok: boolean; nCases: number };
    assert.deepEqual([res.ok, res.nCases], [true, 1]);

    // The engine really is hidden: a command that needs it says so instead of running.
    const pr = medseg('predict', join(tmp, 'no-model'), join(tmp, 'pred'), '--out', join(tmp, 'out'));
    assert.notEqual(pr.status, EXIT_OK);
    assert.match(pr.stderr, /hidden by program\.test\.ts/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
