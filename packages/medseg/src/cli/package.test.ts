/**
 * The packages as a user gets them: `npm pack` both workspaces, install the
 * two tarballs into an empty folder with no network, and run the installed
 * `medseg` (compiled JavaScript, the prebuilt addon, no tsx anywhere in
 * reach): --help, a usage error, training a tiny model and predicting a
 * real hippocampus case, whose labels must equal what the library run from
 * the TypeScript sources predicts with the same model.
 *
 * Offline install: the folder gets a package-lock.json that pins every
 * runtime dependency to the entry of the workspace's package-lock.json
 * (version, registry URL, integrity), so `npm ci --offline` takes each
 * tarball from the npm cache, where the workspace's own `npm ci` (the setup
 * script) put it. A plain `npm install --offline` would not do: it needs the
 * registry's package metadata, which `npm ci` does not cache.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { importPairedFolders } from '../data/import.ts';
import { readDataset } from '../data/dataset.ts';
import { computeFingerprint } from '../data/fingerprint.ts';
import { makePlan } from '../data/planner.ts';
import { defaultTraining } from '../plan/complete.ts';
import { savePlan } from '../plan/store.ts';
import { readVolume } from '../io/read.ts';
import { predictPath } from '../pipeline/predict-folder.ts';
import { dataPath, repoRoot } from '../testing/data.ts';
import { EXIT_OK, EXIT_USAGE } from './errors.ts';

type LockEntry = { dev?: boolean; link?: boolean; [k: string]: unknown };
type PackageJson = {
  name: string;
  version: string;
  license?: string;
  dependencies?: Record<string, string>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
};

// Child processes see no npm_* settings of an enclosing `npm test` and no NODE_OPTIONS (tsx, conditions).
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE_OPTIONS'));

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...cleanEnv, MEDSEG_DEBUG: '' }, timeout });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, EXIT_OK, `${what} exited ${r.status}\n${r.stderr}`);
  return r.stdout;
}

const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;

/** package.json and package-lock.json of a project that depends on the two tarballs (see the module comment). */
function writeInstallProject(dir: string, tarballs: Record<string, string>): void {
  const deps = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]));
  const packages: Record<string, unknown> = { '': { name: 'medseg-package-test', dependencies: deps } };
  for (const [name, file] of Object.entries(tarballs)) {
    const pkg = readJson<PackageJson>(join(repoRoot, 'packages', name.split('/')[1]!, 'package.json'));
    const integrity = `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
    packages[`node_modules/${name}`] = {
      version: pkg.version,
      resolved: `file:${file}`,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    };
  }
  // Runtime dependencies are the non-dev entries of the workspace lock; one nested under a workspace moves under its package.
  const lock = readJson<{ packages: Record<string, LockEntry> }>(join(repoRoot, 'package-lock.json'));
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.includes('node_modules/') || entry.dev || entry.link) continue;
    packages[path.replace(/^packages\/(torch|medseg)\/node_modules\//, 'node_modules/@medseg/$1/node_modules/')] = entry;
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'medseg-package-test', private: true, dependencies: deps }, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify({ name: 'medseg-package-test', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
}

/** A 3-case hippocampus dataset and a plan small enough to train in seconds (2 cases train, 1 validates). */
async function tinyTrainingSetup(dir: string): Promise<{ dataset: string; plan: string; split: string; heldOut: string }> {
  const ids = ['hippocampus_001', 'hippocampus_003', 'hippocampus_007'];
  const src = dataPath('msd-hippocampus');
  for (const d of ['images', 'labels']) {
    mkdirSync(join(dir, 'src', d), { recursive: true });
    for (const id of ids) copyFileSync(join(src, d, `${id}.nii.gz`), join(dir, 'src', d, `${id}.nii.gz`));
  }
  const dataset = await importPairedFolders(join(dir, 'src/images'), join(dir, 'src/labels'), join(dir, 'dataset'), {
    name: 'hippo-tiny',
    channelNames: ['MRI'],
  });
  const plan = await makePlan(await computeFingerprint(readDataset(dataset)), {});
  plan.patchSize = [16, 16, 16];
  plan.network.features = [4, 8];
  plan.network.kernelSizes = [
    [3, 3, 3],
    [3, 3, 3],
  ];
  plan.network.strides = [
    [1, 1, 1],
    [2, 2, 2],
  ];
  plan.network.deepSupervision = false;
  plan.batchSize = 1;
  plan.epochs = 1;
  plan.iterationsPerEpoch = 3;
  plan.inference = { mirror: false, stepFraction: 0.5, transpose: false, precision: 'fp32' };
  plan.training = defaultTraining(plan, { optimizer: 'adamw' });
  await savePlan(join(dir, 'plan.json'), plan);
  writeFileSync(join(dir, 'split.json'), JSON.stringify({ train: ids.slice(0, 2), validation: ids.slice(2) }));
  return { dataset, plan: join(dir, 'plan.json'), split: join(dir, 'split.json'), heldOut: join(src, 'images', 'hippocampus_006.nii.gz') };
}

test('npm pack, offline install into an empty folder, the installed medseg trains and predicts like the sources', { timeout: 240_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-package-'));
  try {
    const packed = join(tmp, 'tarballs');
    mkdirSync(packed);
    const tarballs: Record<string, string> = {};
    // medseg's build compiles torch too; each pack then skips its prepack build (torch's also checks the addon, asserted below).
    ok(run('npm', ['run', 'build', '--silent'], join(repoRoot, 'packages', 'medseg')), 'npm run build');
    for (const name of ['torch', 'medseg']) {
      const out = ok(
        run('npm', ['pack', '--ignore-scripts', '--pack-destination', packed, '--silent'], join(repoRoot, 'packages', name)),
        `npm pack (${name})`,
      );
      tarballs[`@medseg/${name}`] = join(packed, out.trim().split('\n').pop()!);
    }
    const listing = ok(run('tar', ['tzf', tarballs['@medseg/torch']!], tmp), 'tar');
    assert.match(listing, /^package\/build\/Release\/torch_native\.node$/m, 'the prebuilt addon is in the torch tarball');
    assert.doesNotMatch(listing, /^package\/(src\/|binding\.gyp)/m);

    const app = join(tmp, 'app');
    mkdirSync(app);
    writeInstallProject(app, tarballs);
    ok(run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], app), 'npm ci --offline');
    assert.ok(!existsSync(join(app, 'node_modules/tsx')), 'tsx is not installed with the packages');
    const medseg = (...args: string[]) => run('npx', ['--no', '--', 'medseg', ...args], app);

    const help = ok(medseg('--help'), 'medseg --help');
    for (const name of ['evaluate', 'report', 'plan', 'train', 'predict', 'demo', 'import']) assert.match(help, new RegExp(`^  ${name}\\b`, 'm'));
    assert.match(help, /Exit codes:\n {2}0 +success\n {2}1 +\S.*\n {2}2 +bad input.*\n {2}64 +usage error/);
    assert.equal(ok(medseg('--version'), 'medseg --version').trim(), readJson<PackageJson>(join(repoRoot, 'packages/medseg/package.json')).version);
    assert.equal(medseg('predict').status, EXIT_USAGE, 'a missing argument is a usage error');

    const t = await tinyTrainingSetup(join(tmp, 'work'));
    const model = join(tmp, 'model');
    const trained = JSON.parse(ok(medseg('train', t.dataset, '--out', model, '--plan', t.plan, '--split', t.split, '--json'), 'medseg train')) as {
      ok: boolean;
    };
    assert.equal(trained.ok, true);
    assert.ok(existsSync(join(model, 'fold_0/model_final.safetensors')) || existsSync(join(model, 'fold_0/model_best.safetensors')), 'fold 0 weights');

    const predicted = JSON.parse(ok(medseg('predict', model, t.heldOut, '--out', join(tmp, 'pred-package'), '--json'), 'medseg predict')) as {
      outputs: { output: string }[];
    };
    assert.equal(predicted.outputs.length, 1);
    const fromPackage = await readVolume(predicted.outputs[0]!.output);
    const fromSource = await readVolume(
      (await predictPath({ model, input: t.heldOut, out: join(tmp, 'pred-source'), progress: { start() {}, update() {}, stop() {} } })).outputs[0]!.output,
    );
    const image = await readVolume(t.heldOut);
    assert.deepEqual(fromPackage.size, image.size);
    assert.deepEqual(fromPackage.spacing, image.spacing);
    assert.ok(
      fromPackage.data.every((v) => v === 0 || v === 1 || v === 2),
      'labels 0..2',
    );
    assert.deepEqual(Array.from(fromPackage.data), Array.from(fromSource.data), 'the installed CLI predicts what the sources predict');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
