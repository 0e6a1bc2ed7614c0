import * as torch from '@medseg/torch';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { disposeModel, loadModel } from './predict.ts';

test('loadModel: an explicit checkpoint a fold lacks, or a fold that does not exist, is NOT_FOUND naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-load-'));
  try {
    writeFixtureModel(dir, 'mri3d', [{ weights: { final: 1 } }]);
    const m = loadModel(dir);
    assert.deepEqual(m.folds, [0]); // best absent: the final weights
    disposeModel(m);
    assert.throws(
      () => loadModel(dir, { checkpoint: 'best' }),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND' && /model_best\.safetensors/.test(e.message),
    );
    assert.throws(
      () => loadModel(dir, { folds: [3] }),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND' && /fold_3/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("predictVolumes honours the plan's inference precision: bf16 probabilities within bf16 precision of fp32", async () => {
  const { predictVolumes } = await import('./predict.ts');
  const { IDENTITY3 } = await import('../io/volume.ts');
  const { seededRandom } = await import('../util/random.ts');
  const dir = mkdtempSync(join(tmpdir(), 'medseg-bf16-'));
  try {
    writeFixtureModel(dir, 'mri3d', [{ weights: { final: 'random' } }]);
    const size: [number, number, number] = [20, 18, 22];
    const rnd = seededRandom(3);
    const data = Float32Array.from({ length: size[0] * size[1] * size[2] }, () => rnd());
    const image = {
      data,
      size,
      channels: 1,
      spacing: [1, 1, 1] as [number, number, number],
      origin: [0, 0, 0] as [number, number, number],
      direction: IDENTITY3,
      meta: {},
    };
    const m = loadModel(dir);
    const fp32 = predictVolumes(m, [image], { keepProbabilities: true, tta: false });
    m.plan = { ...m.plan, inference: { ...m.plan.inference, precision: 'bf16' } };
    const bf16 = predictVolumes(m, [image], { keepProbabilities: true, tta: false });
    disposeModel(m);
    const a = fp32.probabilities!.data as Float32Array;
    const b = bf16.probabilities!.data as Float32Array;
    let maxDiff = 0;
    let differs = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    for (let i = 0; i < fp32.labels.data.length; i++) if (fp32.labels.data[i] !== bf16.labels.data[i]) differs++;
    // Without native bf16 (AVX512_BF16/AMX) libtorch's bf16 kernels round more
    // intermediate results to bf16: 0.063 on an AVX2 EPYC against < 0.02 with
    // AVX512_BF16. The planner never predicts in bf16 on such a CPU.
    const tolerance = torch.bf16Support().native ? 0.02 : 0.1;
    assert.ok(maxDiff > 0 && maxDiff < tolerance, `max probability difference ${maxDiff}`);
    assert.ok(differs / fp32.labels.data.length < 0.02, `${differs} labels differ`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
