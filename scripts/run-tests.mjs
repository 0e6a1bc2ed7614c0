// Finds every *.test.ts under packages/ and runs them with node's test runner
// (through tsx). Extra arguments filter by path substring.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'build' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
})(join(root, 'packages'));
files.sort();
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const reporters = [
  '--test-reporter=tap',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/test-durations.mjs',
  '--test-reporter-destination=stderr',
];
// Files that time this machine or race against wall-clock deadlines (the
// planner's timer under CPU hogs, the loader's producer/consumer, lease
// expiry after kill -9, Gloo ranks, software-rendered Chromium) run one at a
// time, before the rest, with every core; the rest run three at a time on
// the two cores, each with one libtorch/OpenMP thread: a file spends part of
// its time waiting (child processes starting, servers answering, files
// written), which a third file fills.
const SERIAL = [
  'pipeline/plan-dataset.test',
  'pipeline/step-timer.test',
  'pipeline/precision-choice.test',
  'util/robust-timing.test',
  'data/loader.test',
  'io/dicom/fuzz-compressed.test',
  'deploy/browser-onnx.test',
  'server/src/crash.test',
  'server/src/store/queue.test',
  'torch/src/distributed.test',
  'packages/web/test/',
];
// The longest files of the parallel group (a minute or more on one thread)
// start first, so no long file runs alone at the end while a core idles.
const LONGEST_FIRST = [
  'pipeline/train-model.test',
  'cli/package.test',
  'cli/commands/predict.test',
  'pipeline/plan-dataset-cli.test',
  'models/overfit.test',
  'cli/commands/register-train.test',
  'cli/cli.test',
  'server/src/http/corrections.test',
  'server/src/http/routes.test',
];
const rank = (f) => {
  const i = LONGEST_FIRST.findIndex((s) => f.includes(s));
  return i < 0 ? LONGEST_FIRST.length : i;
};
const serial = chosen.filter((f) => SERIAL.some((s) => f.includes(s)));
const parallel = chosen.filter((f) => !serial.includes(f)).sort((a, b) => rank(a) - rank(b));
let status = 0;
const started = Date.now();
const oneThread = { MEDSEG_THREADS: '1', OMP_NUM_THREADS: '1' };
for (const [files, concurrency, env] of [
  [serial, 1, {}],
  [parallel, 3, oneThread],
]) {
  if (files.length === 0) continue;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...reporters, ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  status ||= r.status ?? 1;
}
// The budget is wall time (15 minutes): the per-file sums above overlap in the parallel group.
console.error(`tests: ${Math.round((Date.now() - started) / 1000)} s wall for ${chosen.length} files`);
process.exit(status);
