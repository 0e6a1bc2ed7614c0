/**
 * The onnxruntime engine: OnnxNetwork's synchronous forward against libtorch,
 * its errors, and whole-case prediction (preprocessing, sliding window with
 * mirroring TTA in batches of 8, postprocessing, back to the input grid) on a
 * real hippocampus case with both engines, through the library and through
 * `medseg predict --engine`. The model is a small U-Net fitted for a few
 * seconds to a real crop, so its masks have both structures in them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { hippocampusCrop, overfit, smallConfig } from '../testing/models.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { runMedseg } from '../testing/cli.ts';
import { dataPath } from '../testing/data.ts';
import { foldDir, foldFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { disposeModel, loadModel, predictVolumes } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import { exportOnnx } from './export-onnx.ts';
import { OnnxNetwork, OnnxRuntimeError } from './onnx-engine.ts';
import { createOnnxPasses } from './onnx-predict.ts';

torch.manualSeed(5);

const maxAbs = (a: Tensor, b: Tensor): number => torch.tidy(() => a.sub(b).abs().max().item());

test('OnnxNetwork: a synchronous forward that matches libtorch, grows its buffers, reports runtime errors and stays usable', () => {
  const net = createNetwork(smallConfig('attention-unet', 3)).eval();
  const x = torch.randn([1, 1, 16, 16, 16]);
  const onnx = new OnnxNetwork(exportOnnx(net, { input: x }).bytes);
  try {
    torch.tidy(() => {
      for (const input of [x, torch.randn([2, 1, 16, 16, 16]), torch.randn([4, 1, 16, 32, 16])]) {
        const want = torch.noGrad(() => net.forward(input)) as Tensor;
        const got = onnx.forward(input);
        assert.deepEqual(got.shape, want.shape);
        assert.ok(maxAbs(got, want) <= 1e-4, `[${input.shape}]`);
      }
    });
    assert.throws(
      () => torch.tidy(() => onnx.forward(torch.randn([1, 2, 16, 16, 16]))),
      (e: unknown) => e instanceof OnnxRuntimeError && /dimensions/.test(e.message),
    );
    torch.tidy(() => assert.deepEqual(onnx.forward(x).shape, [1, 2, 16, 16, 16], 'usable after an error'));
  } finally {
    onnx.dispose();
    x.dispose();
    net.dispose();
  }
  assert.throws(() => onnx.forward(x), /disposed/);
});

describe('both engines on a real hippocampus case', () => {
  let tmp: string;
  let model: string;
  const CASE = 'hippocampus_003';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-onnx-engine-'));
    model = join(tmp, 'model');
    const plan = writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
    // Fit the fixture's U-Net to a real crop so the prediction has anterior and posterior parts.
    const net = createNetwork(plan.network);
    const { image, label } = await hippocampusCrop([16, 16, 16]);
    const fit = overfit(net, image, label, { maxSteps: 60, lr: 1e-2, target: 0.6 });
    assert.ok(Math.min(...fit.dice) > 0.3, `fitted Dice ${fit.dice}`);
    saveWeights(foldFile(foldDir(model, 0), 'best'), net.stateDict());
    torch.dispose([image, label]);
    net.dispose();
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('library: the same mask and probabilities within 1e-4 with mirroring TTA (8 flips batched through the dynamic batch axis)', async (t) => {
    const m = loadModel(model);
    m.plan.inference.mirror = true;
    const onnx = createOnnxPasses(m);
    try {
      const images = [await readVolume(dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`))];
      const a = predictVolumes(m, images, { keepProbabilities: true });
      const b = predictVolumes(m, images, { keepProbabilities: true, networks: onnx.networks });
      const la = a.labels.data as Uint8Array;
      const lb = b.labels.data as Uint8Array;
      const counts = [0, 0, 0];
      let same = 0;
      for (let i = 0; i < la.length; i++) {
        counts[la[i]!]!++;
        if (la[i] === lb[i]) same++;
      }
      assert.ok(counts[1]! > 0 && counts[2]! > 0, `both structures predicted (${counts})`);
      assert.equal(same, la.length, `labels differ in ${la.length - same} of ${la.length} voxels`);
      const pa = a.probabilities!.data as Float32Array;
      const pb = b.probabilities!.data as Float32Array;
      let diff = 0;
      for (let i = 0; i < pa.length; i++) diff = Math.max(diff, Math.abs(pa[i]! - pb[i]!));
      assert.ok(diff <= 1e-4, `probabilities differ by ${diff}`);
      t.diagnostic(
        `voxels per class ${counts.join('/')}, labels equal ${same}/${la.length}, max prob diff ${diff.toExponential(1)}; torch ${a.seconds.toFixed(2)} s, onnx ${b.seconds.toFixed(2)} s per case (export ${onnx.exportSeconds.toFixed(2)} s)`,
      );
    } finally {
      onnx.dispose();
      disposeModel(m);
    }
  });

  test('CLI: medseg predict --engine onnx writes the same label map as --engine torch', async () => {
    const input = dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`);
    const outs: Uint8Array[] = [];
    for (const engine of ['torch', 'onnx']) {
      const out = join(tmp, `pred-${engine}`);
      const r = runMedseg(['predict', model, input, '--out', out, '--engine', engine]);
      assert.equal(r.status, 0, r.stderr);
      outs.push(Uint8Array.from((await readVolume(join(out, `${CASE}.nii.gz`))).data as ArrayLike<number>));
    }
    assert.ok(outs[0]!.some((v) => v > 0));
    assert.deepEqual(outs[1], outs[0]);
    const r = runMedseg(['predict', model, input, '--out', join(tmp, 'x'), '--engine', 'onnx', '--device', 'cuda']);
    assert.notEqual(r.status, 0);
  });
});
