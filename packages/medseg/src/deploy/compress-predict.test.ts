/**
 * Compression as a user runs it, on a small U-Net trained for a few seconds
 * on patches of a real hippocampus case (preprocessed with its plan), with a
 * dataset of real MSD hippocampus files to calibrate on: an int8 file from
 * the compress path, run by `medseg predict --engine onnx-int8 --onnx`,
 * against the fp32 onnxruntime engine's labels (Dice per structure, computed
 * here), the in-memory int8 engine (--calibration) against the file,
 * `medseg compress --prune --structured` to a model folder that both engines
 * predict from, pruning then int8 to one ONNX file carrying both records,
 * and the option errors of the int8 engine.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { runMedseg } from '../testing/cli.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { diceCe } from '../testing/models.ts';
import { dataPath } from '../testing/data.ts';
import { createNetwork } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { importPairedFolders } from '../data/import.ts';
import { foldDir, foldFile, modelFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { disposeModel, loadModel, predictVolumes, prepareInput } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import { predictPath } from '../pipeline/predict-folder.ts';
import { PredictOptionError } from '../infer/output-format.ts';
import { readOnnxMetadata } from './onnx-builder.ts';
import { QUANTIZATION_METADATA_KEY } from './quantize.ts';
import { createInt8Passes, createOnnxPasses } from './onnx-predict.ts';
import { compressModel } from './compress-model.ts';
import { PRUNING_FILE } from './prune-model.ts';

torch.manualSeed(23);

const CASE = 'hippocampus_003';
const P = 16;

/** Adam on 16^3 crops of a preprocessed case: a grid over the whole case, every other step a crop around the hippocampus. */
function fit(net: SegmentationNetwork, c: PreprocessedCase, steps: number): void {
  const [Z, Y, X] = c.shape;
  const img = torch.tensor(c.data, [1, 1, Z, Y, X]);
  const lab = torch.tensor(Float32Array.from(c.label!), [1, Z, Y, X]).long();
  const grid = (n: number): number[] => [...Array.from({ length: Math.max(0, Math.ceil((n - P) / 8)) }, (_, i) => i * 8), n - P];
  const starts: number[][] = [];
  for (const z of grid(Z)) for (const y of grid(Y)) for (const x of grid(X)) starts.push([z, y, x]);
  const fg: number[][] = [];
  c.label!.forEach((v, i) => v > 0 && fg.push([Math.floor(i / (Y * X)), Math.floor(i / X) % Y, i % X]));
  const centre = [0, 1, 2].map((a) => fg.reduce((s, p) => s + p[a]!, 0) / fg.length);
  const opt = new torch.optim.Adam(net.parameters(), { lr: 1e-2 });
  net.train();
  for (let i = 0; i < steps; i++) {
    const jitter = [((i * 3) % 9) - 4, ((i * 5) % 9) - 4, ((i * 7) % 9) - 4];
    const s = i % 2 ? starts[(i >> 1) % starts.length]! : centre.map((m, a) => Math.max(0, Math.min([Z, Y, X][a]! - P, Math.round(m - P / 2 + jitter[a]!))));
    torch.tidy(() => {
      opt.zeroGrad();
      const crop = (t: Tensor, d: number) =>
        t
          .narrow(d, s[0]!, P)
          .narrow(d + 1, s[1]!, P)
          .narrow(d + 2, s[2]!, P)
          .contiguous();
      diceCe(net.forward(crop(img, 2)) as Tensor, crop(lab, 1), 3).backward();
      opt.step();
    });
  }
  opt.dispose();
  net.eval();
  torch.dispose([img, lab]);
}

/** Per-structure Dice of labels a against labels b (classes 1 and 2). */
function dice(a: Uint8Array, b: Uint8Array): number[] {
  return [1, 2].map((k) => {
    let both = 0;
    let na = 0;
    let nb = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === k) na++;
      if (b[i] === k) nb++;
      if (a[i] === k && b[i] === k) both++;
    }
    return (2 * both) / (na + nb);
  });
}

describe('medseg compress --prune / --int8 and predict --engine onnx-int8', () => {
  let tmp: string;
  let model: string;
  let dataset: string;
  let input: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-compress-predict-'));
    model = join(tmp, 'model');
    input = dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`);
    const fixture = writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
    // Wider than the fixture's [4, 8]: int8 keeps the labels of a net with more channels per layer better.
    const plan = { ...fixture, network: { ...fixture.network, features: [8, 16] } };
    writeFileSync(modelFile(model, 'plan'), JSON.stringify(plan));
    const net = createNetwork(plan.network);
    const label = await readVolume(dataPath('msd-hippocampus', 'labels', `${CASE}.nii.gz`));
    const c = prepareInput(plan, [await readVolume(input)], Uint8Array.from(label.data as ArrayLike<number>)).case;
    fit(net, c, 240);
    saveWeights(foldFile(foldDir(model, 0), 'best'), net.stateDict());
    net.dispose();
    for (const d of ['images', 'labels']) {
      mkdirSync(join(tmp, 'src', d), { recursive: true });
      for (const id of ['hippocampus_001', 'hippocampus_003', 'hippocampus_006'])
        copyFileSync(dataPath('msd-hippocampus', d, `${id}.nii.gz`), join(tmp, 'src', d, `${id}.nii.gz`));
    }
    dataset = await importPairedFolders(join(tmp, 'src/images'), join(tmp, 'src/labels'), join(tmp, 'dataset'), { name: 'hippo-small', channelNames: ['MRI'] });
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('--engine onnx-int8 with a compressed file: Dice >= 0.97 per structure against the fp32 onnx engine; the in-memory int8 engine gives the same labels', async (t) => {
    const file = join(tmp, 'int8.onnx');
    await compressModel(model, file, { int8: { dataset }, timedPasses: 0 });
    const out = join(tmp, 'pred-int8');
    const r = runMedseg(['predict', model, input, '--out', out, '--engine', 'onnx-int8', '--onnx', file]);
    assert.equal(r.status, 0, r.stderr);
    const int8 = Uint8Array.from((await readVolume(join(out, `${CASE}.nii.gz`))).data as ArrayLike<number>);
    const m = loadModel(model);
    const fp32 = createOnnxPasses(m);
    const mem = await createInt8Passes(m, { dataset });
    try {
      const images = [await readVolume(input)];
      const ref = predictVolumes(m, images, { networks: fp32.networks }).labels.data as Uint8Array;
      const inMemory = predictVolumes(m, images, { networks: mem.networks }).labels.data as Uint8Array;
      const counts = [1, 2].map((k) => ref.filter((v) => v === k).length);
      assert.ok(
        counts.every((n) => n > 100),
        `both structures predicted by fp32 (${counts})`,
      );
      const d = dice(int8, ref);
      assert.ok(Math.min(...d) >= 0.97, `Dice int8 vs fp32 ${d}`);
      assert.deepEqual(inMemory, int8, 'the in-memory engine quantizes as compress does');
      t.diagnostic(`fp32 voxels per structure ${counts}; Dice int8 vs fp32 ${d.map((x) => x.toFixed(4))}`);
    } finally {
      fp32.dispose();
      mem.dispose();
      disposeModel(m);
    }
  });

  test('--prune 0.5 --structured to a model folder: a smaller network that both engines predict from alike', async (t) => {
    const pruned = join(tmp, 'pruned');
    const r = runMedseg(['compress', model, '--prune', '0.5', '--structured', '--out', pruned]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /parameters (\d+) -> (\d+)/);
    const record = JSON.parse(readFileSync(join(pruned, PRUNING_FILE), 'utf8'));
    const summary = record.folds[0].summary;
    assert.equal(summary.kind, 'channels');
    assert.ok(summary.groups.length > 0);
    const full = loadModel(model);
    const m = loadModel(pruned);
    const onnx = createOnnxPasses(m);
    try {
      assert.equal(m.nets[0]!.numParameters(), summary.parameters.after);
      assert.ok(summary.parameters.after < 0.5 * full.nets[0]!.numParameters());
      const images = [await readVolume(input)];
      const a = predictVolumes(m, images).labels.data as Uint8Array;
      const b = predictVolumes(m, images, { networks: onnx.networks }).labels.data as Uint8Array;
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      assert.ok(same >= a.length - 2, `torch and onnx labels differ in ${a.length - same} voxels`);
      t.diagnostic(r.stdout.trim());
    } finally {
      onnx.dispose();
      disposeModel(m);
      disposeModel(full);
    }
  });

  test('--prune 0.3 --structured with int8: one ONNX file with the pruning and quantization records that onnxruntime runs', async () => {
    const file = join(tmp, 'pruned-int8.onnx');
    const r = await compressModel(model, file, { prune: { sparsity: 0.3, structured: true }, int8: { dataset }, timedPasses: 2 });
    assert.ok(r.latency && r.latency.compressedMs > 0);
    const bytes = readFileSync(file);
    assert.equal(r.bytes, bytes.length);
    const meta = readOnnxMetadata(bytes);
    assert.equal(JSON.parse(meta['medseg.pruning']!).kind, 'channels');
    assert.ok(meta[QUANTIZATION_METADATA_KEY]);
    const s = await ort.InferenceSession.create(bytes);
    try {
      const out = await s.run({ image: new ort.Tensor('float32', new Float32Array(P ** 3).fill(0.5), [1, 1, P, P, P]) });
      assert.deepEqual(out.logits!.dims, [1, 3, P, P, P]);
    } finally {
      await s.release();
    }
  });

  test('option errors: --engine onnx-int8 without --onnx or --calibration, --onnx with the torch engine, a file that is not int8', async () => {
    const base = { model, input, out: join(tmp, 'x') };
    await assert.rejects(
      predictPath({ ...base, engine: 'onnx-int8' }),
      (e: unknown) => e instanceof PredictOptionError && /--calibration <dataset>/.test(e.message),
    );
    await assert.rejects(predictPath({ ...base, engine: 'torch', onnx: join(tmp, 'int8.onnx') }), PredictOptionError);
    const fp32 = join(tmp, 'pruned-fp32.onnx');
    await compressModel(model, fp32, { prune: { sparsity: 0.5 }, timedPasses: 0 });
    await assert.rejects(
      predictPath({ ...base, engine: 'onnx-int8', onnx: fp32 }),
      (e: unknown) => e instanceof PredictOptionError && /not quantized/.test(e.message),
    );
    assert.ok(!existsSync(join(tmp, 'x')));
  });
});
