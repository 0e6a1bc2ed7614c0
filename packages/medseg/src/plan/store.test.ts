import { test } from 'node:test';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { trainerConfig } from '../train/trainer-config.ts';
import { defaultAugmentation } from './complete.ts';
import { loadPlan, savePlan } from './store.ts';
import { PLAN_SCHEMA } from './types.ts';

/** A plan as medseg.plan/1 wrote it: no training or inference section, no augmentation.transpose. */
function v1Plan(budget: { minutes: number } | null): Record<string, unknown> {
  const { transpose: _t, ...augmentation } = defaultAugmentation(2, [64, 64], true);
  return {
    schema: 'medseg.plan/1',
    dataset: 'em',
    dims: '2d',
    channels: ['EM'],
    labels: { 0: 'background', 1: 'membrane' },
    targetSpacing: [1, 0.5, 0.5],
    medianShape: [1, 64, 64],
    patchSize: [64, 64],
    batchSize: 2,
    network: {
      architecture: 'unet',
      dims: 2,
      inChannels: 1,
      numClasses: 2,
      features: [4, 8],
      kernelSizes: [
        [3, 3],
        [3, 3],
      ],
      strides: [
        [1, 1],
        [2, 2],
      ],
      deepSupervision: true,
      norm: 'instance',
    },
    normalization: [{ channel: 'EM', scheme: 'zscore', useMaskForNorm: false }],
    resampling: { image: 'bspline3', label: 'onehot-linear', separateZ: false, anisotropyThreshold: 3 },
    augmentation,
    oversampleForeground: 0.33,
    iterationsPerEpoch: 5,
    epochs: 2,
    budget: budget && {
      ...budget,
      cores: 2,
      memoryGiB: 4,
      stepSeconds: 0.1,
      macsPerSecond: 1e10,
      overheadSeconds: 0.01,
      baseFeatures: 4,
      targetIterations: 2000,
      note: '',
    },
    reference: { patchSize: [64, 64], batchSize: 2, features: [4, 8] },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'medseg-plan-store-'));
const write = (name: string, v: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(v));
  return path;
};

test('a medseg.plan/1 file loads as the current schema with the defaults a v1 reader derived, and saves as such', async () => {
  const plain = loadPlan(write('v1.json', v1Plan(null)));
  assert.equal(plain.schema, PLAN_SCHEMA);
  assert.equal(plain.training.optimizer, 'sgd'); // no budget: nnU-Net's SGD, as v1's defaultTraining
  assert.equal(plain.training.lr, 0.01);
  assert.equal(plain.training.loss.batchDice, true); // 2D
  assert.deepEqual(plain.augmentation.transpose, { p: 0 }); // absent meant off in v1
  assert.deepEqual(plain.inference, { mirror: true, stepFraction: 0.5, transpose: true, precision: 'fp32' }); // square pixels, free rotation
  assert.equal(plain.training.precision, 'fp32'); // what every plan before precision trained in
  const budgeted = loadPlan(write('v1-budget.json', v1Plan({ minutes: 10 })));
  assert.equal(budgeted.training.optimizer, 'adamw');
  assert.equal(budgeted.training.timeBudgetMinutes, 10);
  // v1 files that had the sections keep them.
  const own = loadPlan(write('v1-own.json', { ...v1Plan(null), inference: { mirror: false, stepFraction: 0.25 } }));
  assert.deepEqual(own.inference, { mirror: false, stepFraction: 0.25, transpose: true, precision: 'fp32' });
  const path = join(dir, 'saved.json');
  await savePlan(path, plain);
  assert.equal(JSON.parse(readFileSync(path, 'utf8')).schema, PLAN_SCHEMA);
  assert.deepEqual(loadPlan(path), plain);
  assert.throws(() => loadPlan(write('future.json', { ...v1Plan(null), schema: 'medseg.plan/9' })), /schema "medseg.plan\/9" is not one this medseg reads/);
});

test('hand edits: invalid training values are rejected by name; a valid one changes what training does', async () => {
  const base = v1Plan(null);
  assert.throws(() => loadPlan(write('e1.json', { ...base, training: { optimizer: 'adam' } })), /training\.optimizer must be "sgd" or "adamw"/);
  assert.throws(() => loadPlan(write('e2.json', { ...base, training: { lr: -1 } })), /training\.lr/);
  assert.throws(() => loadPlan(write('e3.json', { ...base, training: { loss: { name: 'hinge' } } })), /training\.loss\.name/);
  assert.throws(() => loadPlan(write('e4.json', { ...base, inference: { stepFraction: 0 } })), /inference\.stepFraction/);
  assert.throws(() => loadPlan(write('e5.json', { ...base, dims: '3d_fullres' })), /patchSize|network\.dims/);
  assert.throws(() => loadPlan(write('e6.json', { ...base, training: { precision: 'fp16' } })), /training\.precision must be "fp32" or "bf16"/);
  assert.throws(() => loadPlan(write('e7.json', { ...base, inference: { precision: 'half' } })), /inference\.precision must be "fp32" or "bf16"/);
  assert.throws(() => loadPlan(write('e8.json', { ...base, precisionChoice: 'fast' })), /precisionChoice must be an object with a reason/);
  assert.equal(loadPlan(write('e9.json', { ...base, inference: { precision: 'bf16' } })).inference.precision, 'bf16');
  assert.throws(
    () => loadPlan(write('e10.json', { ...base, training: { loss: { skeletonRecall: -1 } } })),
    /training\.loss\.skeletonRecall must be a number >= 0/,
  );
  assert.equal(loadPlan(write('e11.json', { ...base, training: { loss: { skeletonRecall: 1 } } })).training.loss.skeletonRecall, 1);
  assert.deepEqual(loadPlan(write('e13.json', { ...base, training: { weightAveraging: { from: 0.75 } } })).training.weightAveraging, { from: 0.75 });
  for (const [k, bad] of [
    [14, { from: 1 }],
    [15, { from: -0.1 }],
    [16, 0.75],
  ] as const)
    assert.throws(() => loadPlan(write(`e${k}.json`, { ...base, training: { weightAveraging: bad } })), /training\.weightAveraging must be \{ "from"/);
  const plan3d = writeFixtureModel(join(dir, 'fixture-3d'), 'mri3d', [{ weights: { best: 'random' } }]);
  assert.throws(
    () => loadPlan(write('e12.json', { ...plan3d, training: { ...plan3d.training, loss: { ...plan3d.training.loss, skeletonRecall: 1 } } })),
    /training\.loss\.skeletonRecall applies to 2d plans only/,
  );

  // The same tiny training run, with the plan's lr as written and hand-edited to 0.
  const { train } = await import('../train/trainer.ts');
  const { TinySegNet, syntheticData, fixtureConfig } = await import('../testing/trainer-fixture.ts');
  const weightsAfter = async (lr: number | undefined): Promise<number[]> => {
    const plan = loadPlan(write(`lr-${lr}.json`, lr === undefined ? base : { ...base, training: { lr } }));
    const cfg = { ...trainerConfig(plan), epochs: 1, iterationsPerEpoch: 2, patchSize: fixtureConfig.patchSize };
    torch.manualSeed(5);
    const net = new TinySegNet();
    await train(net, cfg, syntheticData(3), mkdtempSync(join(dir, 'run-')), { progress: { start() {}, update() {}, stop() {} } });
    const w = net.c1.weight.toArray() as number[];
    net.dispose();
    return w;
  };
  torch.manualSeed(5);
  const init = new TinySegNet();
  const w0 = init.c1.weight.toArray() as number[];
  init.dispose();
  assert.notDeepEqual(await weightsAfter(undefined), w0, 'the default lr trains');
  assert.deepEqual(await weightsAfter(0), w0, 'lr 0 written in the plan leaves the weights as they were');
});
