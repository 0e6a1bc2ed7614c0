import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { dataPath } from '../testing/data.ts';
import { readDicomSeries, readDicomSeg, segMasks } from '../io/dicom/index.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import { PLAN_SCHEMA, type Plan, type PlanDraft } from '../plan/types.ts';
import { createNetwork } from '../models/registry.ts';
import { predictPath } from '../pipeline/predict-folder.ts';

// A model folder around an untrained network: enough to check the DICOM in ->
// DICOM SEG out path (geometry, frame references), not accuracy.
function tinyModel(dir: string): void {
  const plan: PlanDraft = {
    schema: PLAN_SCHEMA,
    dataset: 'ct-test',
    dims: '3d_fullres',
    channels: ['CT'],
    labels: { 0: 'background', 1: 'liver' },
    targetSpacing: [5, 0.7, 0.7],
    medianShape: [3, 512, 512],
    patchSize: [4, 64, 64],
    batchSize: 1,
    network: {
      architecture: 'unet',
      dims: 3,
      inChannels: 1,
      numClasses: 2,
      features: [4, 8],
      kernelSizes: [
        [1, 3, 3],
        [1, 3, 3],
      ],
      strides: [
        [1, 1, 1],
        [1, 2, 2],
      ],
      deepSupervision: false,
      norm: 'instance',
    },
    normalization: [{ scheme: 'ct', clip: [-100, 300], mean: 60, std: 80 } as Plan['normalization'][number]],
    resampling: { image: 'bspline3', label: 'onehot-linear', separateZ: true, anisotropyThreshold: 3 },
    augmentation: defaultAugmentation(3, [4, 64, 64]),
    oversampleForeground: 0.33,
    iterationsPerEpoch: 1,
    epochs: 1,
    budget: null,
    reference: { patchSize: [4, 64, 64], batchSize: 1, features: [4, 8] },
    inference: { mirror: false, stepFraction: 0.5 },
  };
  mkdirSync(join(dir, 'fold_0'), { recursive: true });
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
  torch.manualSeed(3);
  const net = createNetwork(plan.network);
  // Make the head say "liver" everywhere, so every slice gets a SEG frame.
  torch.noGrad(() => {
    const sd = net.stateDict();
    sd.get('seg_heads.0.weight')!.zero_();
    sd.get('seg_heads.0.bias')!.copy_(torch.tensor([0, 10]));
  });
  torch.saveSafetensors(join(dir, 'fold_0/model_final.safetensors'), net.stateDict());
  net.dispose();
}

test('predicting a DICOM CT series writes a DICOM SEG on the source grid that reads back', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-dcm-'));
  tinyModel(join(dir, 'model'));
  const series = dataPath('dcmqi-ct-dicomseg/ct-3slice');
  const r = await predictPath({ model: join(dir, 'model'), input: series, out: join(dir, 'out'), progress: { start() {}, update() {}, stop() {} } });
  assert.equal(r.outputs.length, 1);
  assert.match(r.outputs[0]!.output, /\.seg\.dcm$/);
  const source = await readDicomSeries(series);
  const seg = await readDicomSeg(r.outputs[0]!.output);
  assert.deepEqual(
    seg.segments.map((s) => s.label),
    ['liver'],
  );
  const m = segMasks(seg, source).get(1)!;
  assert.deepEqual(m.size, source.size);
  assert.ok(
    m.data.every((v) => v === 1),
    'every voxel of every source slice should be in the segment',
  );
});
