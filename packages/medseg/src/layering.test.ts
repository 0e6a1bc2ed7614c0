/**
 * The import direction of the medseg package, checked on every source file:
 *
 *   cli → federated → pipeline → train / deploy / explain / registration → infer → data / models → plan / eval → io → util (and @medseg/torch)
 *
 * A file may import from its own folder and from any lower layer; folders on
 * one level (data and models, plan and eval) do not import each other. Inside
 * eval/, the computations never import the reporting in eval/report/.
 * Production files never import test-only code (testing/, *.test.ts) or the
 * benchmarks. Static and dynamic imports (`import('...')`) both count.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));

/** Layer of each top-level folder of src/; a higher number is a higher layer. */
export const LAYERS: Record<string, number> = {
  util: 0,
  io: 1,
  plan: 2,
  eval: 2,
  data: 3,
  models: 3,
  demo: 3,
  infer: 4,
  train: 5,
  deploy: 5,
  explain: 5,
  registration: 5,
  pipeline: 6,
  federated: 7,
  cli: 8,
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of every static import/export-from and dynamic import() in a source text. */
export function importSpecifiers(text: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /(?:^|[\s;])(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"`]([^'"`]+)['"`]/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.push(m[1]!);
  return specs;
}

const isTestOnly = (rel: string) => rel.endsWith('.test.ts') || rel.startsWith('testing/');

/** The violations of the layering rule for one file (paths relative to src/). */
export function violations(rel: string, specs: string[]): string[] {
  const bad: string[] = [];
  const from = rel.split('/')[0]!;
  const fromLayer = LAYERS[from];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    const target = relative(SRC, resolve(SRC, dirname(rel), spec)).replace(/\\/g, '/');
    if (target.startsWith('..')) {
      bad.push(`${rel} imports ${spec}, outside the medseg package (bench/ or another package's sources)`);
      continue;
    }
    if (isTestOnly(rel)) continue;
    if (isTestOnly(target)) {
      bad.push(`${rel} imports test-only code ${target}`);
      continue;
    }
    const to = target.split('/')[0]!;
    if (to === from) {
      if (from === 'eval' && !rel.startsWith('eval/report/') && target.startsWith('eval/report/')) bad.push(`${rel} (computation) imports reporting ${target}`);
      continue;
    }
    const toLayer = LAYERS[to];
    if (fromLayer === undefined || toLayer === undefined) {
      bad.push(`${rel} → ${target}: folder not in the layer table`);
      continue;
    }
    if (toLayer > fromLayer) bad.push(`${rel} imports ${target}, a higher layer (${from} ${fromLayer} → ${to} ${toLayer})`);
    else if (toLayer === fromLayer) bad.push(`${rel} imports ${target}, a sibling layer (${from} and ${to} are on one level)`);
  }
  return bad;
}

test('imports run one way through the layers of the medseg package', () => {
  const bad: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const rel = relative(SRC, file).replace(/\\/g, '/');
    if (!rel.includes('/')) continue; // this test and other top-level files
    bad.push(...violations(rel, importSpecifiers(readFileSync(file, 'utf8'))));
  }
  assert.deepEqual(bad, []);
});

test('the layering check catches upward, sibling, test-only and bench imports', () => {
  assert.deepEqual(violations('infer/predict.ts', ['../train/trainer.ts']).length, 1);
  assert.deepEqual(violations('data/plan.ts', ['../models/config.ts']).length, 1);
  assert.deepEqual(violations('pipeline/demo.ts', ['../testing/data.ts']).length, 1);
  assert.deepEqual(violations('pipeline/demo.ts', ['../../../../bench/lib/peer.ts']).length, 1);
  assert.deepEqual(violations('eval/metrics.ts', ['./report/plots.ts']).length, 1);
  assert.deepEqual(violations('train/trainer.ts', ['../infer/predict.ts', './losses.ts', '../util/quantile.ts']), []);
  assert.deepEqual(violations('deploy/export-onnx.ts', ['../train/trainer.ts']).length, 1);
  assert.deepEqual(violations('infer/predict.ts', ['../deploy/export-onnx.ts']).length, 1);
  assert.deepEqual(violations('pipeline/x.ts', ['../deploy/export-onnx.ts']), []);
  assert.deepEqual(violations('deploy/export-onnx.ts', ['../infer/predict.ts', '../models/registry.ts', '../plan/types.ts']), []);
  assert.deepEqual(violations('models/unet.test.ts', ['../testing/models.ts', '../pipeline/x.ts']), []);
  assert.deepEqual(importSpecifiers("import a from './a.ts';\nconst m = await import('../b/c.ts');\nexport { x } from \"./d.ts\";\nimport './side.ts';"), [
    './a.ts',
    './d.ts',
    './side.ts',
    '../b/c.ts',
  ]);
});
