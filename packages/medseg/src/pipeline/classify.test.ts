/**
 * The classification pipeline on a tiny PneumoniaMNIST subset with a tiny
 * ResNet: an interrupted run resumed from its checkpoint ends with the
 * weights of the uninterrupted run; the classifier folder reports val and
 * test metrics consistent with its CSV predictions; images given as PNG
 * files are classified as the same images from the .npz; a folder that is not
 * a classifier is a typed error; a 3D .npz trains and predicts with a 3D
 * classifier; a segmentation HybridNet's encoder initialises the HybridNet
 * classifier.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dataPath } from '../testing/data.ts';
import { smallConfig } from '../testing/models.ts';
import { runPython } from '../testing/python.ts';
import { MedsegIoError } from '../io/errors.ts';
import { encodePngPixels } from '../io/image2d-png.ts';
import { readNpz } from '../io/npz.ts';
import { readWeights, saveWeights } from '../plan/model-weights.ts';
import { createNetwork } from '../models/registry.ts';
import { foldFile } from '../plan/model-folder.ts';
import { classificationMetrics } from '../eval/classification.ts';
import { parseCsv } from '../util/csv.ts';
import {
  loadClassifier,
  predictClasses,
  readClassificationInputs,
  readClassifierFolder,
  trainClassifierFromNpz,
  writePredictionsCsv,
  type TrainClassifierOptions,
} from './classify.ts';
import { createProgress } from '../util/progress.ts';

const dir = mkdtempSync(join(tmpdir(), 'medseg-classify-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DATA = dataPath('pneumoniamnist', 'pneumoniamnist.npz');
const tiny: Omit<TrainClassifierOptions, 'outDir'> = {
  data: DATA,
  architecture: 'resnet18',
  width: 4,
  extra: { blocks: [1, 1, 1] },
  epochs: 2,
  batchSize: 16,
  limit: 32,
  progress: createProgress('silent'),
};

function weightsOf(path: string): Map<string, Float32Array> {
  const { tensors } = readWeights(path);
  const out = new Map([...tensors].filter(([, t]) => t.dtype === 'float32').map(([k, t]) => [k, t.toFloat32Array()]));
  for (const t of tensors.values()) t.dispose();
  return out;
}

test('classify pipeline: a run interrupted after one epoch and resumed ends where the uninterrupted run ends', async () => {
  const whole = await trainClassifierFromNpz({ ...tiny, outDir: join(dir, 'whole') });
  assert.equal(whole.result.epochsRun, 2);
  await trainClassifierFromNpz({ ...tiny, outDir: join(dir, 'resumed'), stopAfterEpochs: 1 });
  const resumed = await trainClassifierFromNpz({ ...tiny, outDir: join(dir, 'resumed'), resume: true });
  assert.equal(resumed.result.epochsRun, 2);
  const a = weightsOf(foldFile(join(dir, 'whole'), 'final'));
  const b = weightsOf(foldFile(join(dir, 'resumed'), 'final'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) {
    const w = b.get(k)!;
    let diff = 0;
    v.forEach((x, i) => (diff = Math.max(diff, Math.abs(x - w[i]!))));
    assert.ok(diff < 1e-4, `${k} differs by ${diff}`);
  }
  assert.equal(
    readFileSync(foldFile(join(dir, 'resumed'), 'log'), 'utf8')
      .trim()
      .split('\n').length,
    2,
  );
});

test('classify pipeline: CSV predictions agree with the folder metrics; PNG files classify as the .npz images', async () => {
  const modelDir = join(dir, 'whole');
  const folder = readClassifierFolder(modelDir);
  assert.equal(folder.trainCases, 32);
  assert.ok(folder.temperature > 0 && Number.isFinite(folder.threshold!));
  const { net } = loadClassifier(modelDir);
  try {
    const inputs = await readClassificationInputs([DATA], folder, { split: 'test', limit: 32 });
    const predictions = predictClasses(net, folder, inputs.set);
    const csv = join(dir, 'pred.csv');
    writePredictionsCsv(csv, inputs.ids, predictions, inputs.labels);
    const rows = parseCsv(readFileSync(csv, 'utf8'));
    assert.deepEqual(rows[0], ['id', 'p_0', 'p_1', 'predicted', 'label']);
    assert.equal(rows.length, 33);
    for (const r of rows.slice(1)) assert.ok(Math.abs(Number(r[1]) + Number(r[2]) - 1) < 1e-4);
    const probs = rows.slice(1).flatMap((r) => [Number(r[1]), Number(r[2])]);
    const labels = rows.slice(1).map((r) => Number(r[4]));
    const m = classificationMetrics(probs, labels, 2, { threshold: folder.threshold });
    assert.ok(Math.abs(m.auc - folder.metrics.test!.auc) < 1e-3, `AUC from the CSV ${m.auc} vs the folder's ${folder.metrics.test!.auc}`);
    assert.equal(m.accuracy, folder.metrics.test!.accuracy);

    // The first three test images as PNG files give the .npz's probabilities.
    const images = readNpz(DATA, { keys: ['test_images'] }).get('test_images')!;
    const pngDir = join(dir, 'png');
    mkdirSync(pngDir, { recursive: true });
    const files = [0, 1, 2].map((i) => {
      const f = join(pngDir, `case${i}.png`);
      writeFileSync(f, encodePngPixels({ width: 28, height: 28, channels: 1, data: (images.data as Uint8Array).slice(i * 784, (i + 1) * 784) }));
      return f;
    });
    const fromPng = await readClassificationInputs(files, folder);
    const all = await readClassificationInputs([DATA], folder, { split: 'test' });
    const p = predictClasses(net, folder, fromPng.set);
    const q = predictClasses(net, folder, { ...all.set, images: all.set.images.subarray(0, 3 * 784), labels: all.set.labels.subarray(0, 3) });
    p.forEach((x, i) => assert.ok(Math.abs(x.probabilities[1]! - q[i]!.probabilities[1]!) < 1e-5, `case ${i}`));
    assert.deepEqual(fromPng.ids, ['case0.png', 'case1.png', 'case2.png']);
  } finally {
    net.dispose();
  }
  assert.throws(
    () => readClassifierFolder(dir),
    (e) => e instanceof MedsegIoError && e.code === 'NOT_FOUND',
  );
});

test('classify pipeline: a 3D .npz trains a 3D classifier (HybridNet encoder) and predicts', async () => {
  // 3D volumes [N, 8, 16, 16]: class 1 is brighter in its upper half.
  const npz = join(dir, 'vol.npz');
  runPython([
    '-c',
    `import sys, numpy as np
rng = np.random.default_rng(0)
def split(n):
    y = np.arange(n) % 2
    x = rng.integers(0, 120, (n, 8, 16, 16)).astype(np.uint8)
    x[y == 1, :4] += 100
    return x, y.reshape(-1, 1).astype(np.uint8)
d = {}
for s, n in (('train', 24), ('val', 12), ('test', 12)):
    d[s + '_images'], d[s + '_labels'] = split(n)
np.savez_compressed(sys.argv[1], **d)`,
    npz,
  ]);
  const modelDir = join(dir, 'vol');
  const f = await trainClassifierFromNpz({
    data: npz,
    outDir: modelDir,
    architecture: 'hybridnet',
    width: 4,
    extra: { stages: 2, depth: 1 },
    epochs: 2,
    batchSize: 8,
    progress: createProgress('silent'),
  });
  assert.equal(f.config.dims, 3);
  assert.deepEqual(f.config.inputSize, [8, 16, 16]);
  const { net, folder } = loadClassifier(modelDir);
  try {
    const inputs = await readClassificationInputs([npz], folder, { split: 'test' });
    const p = predictClasses(net, folder, inputs.set);
    assert.equal(p.length, 12);
    assert.ok(p.every((q) => Math.abs(q.probabilities[0]! + q.probabilities[1]! - 1) < 1e-6));
  } finally {
    net.dispose();
  }
});

test("classify pipeline: --init copies a segmentation HybridNet's encoder into the HybridNet classifier by name", async () => {
  const seg = createNetwork(smallConfig('hybridnet', 2, { features: [4, 8], deepSupervision: false, extra: { depth: 1 } }));
  const source = join(dir, 'seg.safetensors');
  saveWeights(source, seg.stateDict());
  const expected = new Map([...seg.stateDict()].filter(([k]) => k.startsWith('encoder')).map(([k, t]) => [k, t.toFloat32Array()]));
  seg.dispose();
  const modelDir = join(dir, 'init');
  // lr 0: the copied weights stay as they were copied.
  const f = await trainClassifierFromNpz({
    ...tiny,
    architecture: 'hybridnet',
    extra: { stages: 2, depth: 1 },
    epochs: 1,
    lr: 0,
    outDir: modelDir,
    init: { source, part: 'encoder' },
  });
  assert.equal(f.init!.loaded, expected.size, 'every encoder tensor of the segmentation model is copied');
  const got = weightsOf(foldFile(modelDir, 'final'));
  for (const [k, v] of expected) assert.deepEqual(got.get(k), v, k);
  assert.ok(expected.has('encoder_post.0.blocks.0.attn.in_proj_weight') && expected.has('encoder.1.convs.1.conv.weight'));
});
