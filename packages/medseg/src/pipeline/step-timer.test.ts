import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { defaultTraining } from '../plan/complete.ts';
import type { NetworkConfig } from '../plan/types.ts';
import { timeTrainingStep } from './step-timer.ts';

const network: NetworkConfig = {
  architecture: 'unet',
  dims: 2,
  inChannels: 1,
  numClasses: 3,
  features: [4, 8, 16],
  kernelSizes: [
    [3, 3],
    [3, 3],
    [3, 3],
  ],
  strides: [
    [1, 1],
    [2, 2],
    [2, 2],
  ],
  deepSupervision: true,
  norm: 'instance',
};
const training = defaultTraining({ dims: '2d', patchSize: [32, 48], medianShape: [1, 64, 64], budget: { minutes: 1 } });

test("the step timer runs the plan's training step: its optimizer, learning rate and loss", async () => {
  const before = torch.liveTensors();
  torch.manualSeed(1);
  const frozen = await timeTrainingStep(network, [32, 48], 2, { ...training, lr: 0 }, { reps: 3 });
  // lr 0: the same batch gives the same loss every step (AdamW with lr 0 changes nothing; so does weight decay x lr).
  // one warm-up step, one that sizes the repetitions, then the timed repetitions
  assert.equal(frozen.losses.length, 2 + frozen.steps.length * frozen.stepsPerRepetition);
  for (const l of frozen.losses) assert.ok(Math.abs(l - frozen.losses[0]!) < 1e-6, `losses ${frozen.losses}`);
  torch.manualSeed(1);
  const learning = await timeTrainingStep(network, [32, 48], 2, { ...training, lr: 0.05 }, { reps: 3 });
  assert.ok(learning.losses.at(-1)! < learning.losses[0]! - 1e-3, `losses ${learning.losses} should fall on a fixed batch`);
  // The same network, data and seed with plain CE: a different loss value (Dice + CE has the Dice term on top).
  torch.manualSeed(1);
  const ce = await timeTrainingStep(network, [32, 48], 2, { ...training, lr: 0, loss: { name: 'ce', batchDice: true } }, { reps: 1 });
  assert.ok(frozen.losses[0]! - ce.losses[0]! > 0.1, `dice_ce ${frozen.losses[0]} vs ce ${ce.losses[0]}`);
  // The step time is the median of the clean repetitions: within the range of the timed ones.
  assert.ok(frozen.seconds >= Math.min(...frozen.steps) - 1e-12 && frozen.seconds <= Math.max(...frozen.steps) + 1e-12);
  assert.equal(torch.liveTensors(), before);
  await assert.rejects(() => timeTrainingStep({ ...network, architecture: 'no-such-net' }, [32, 48], 2, training), /no-such-net/);
});

test('a patch with 64x the voxels times slower', async () => {
  // A small patch's step is mostly per-op overhead, so 16x the voxels was sometimes under 2x the median time.
  const small = await timeTrainingStep(network, [32, 32], 2, training, { reps: 3 });
  const large = await timeTrainingStep(network, [256, 256], 2, training, { reps: 3 });
  assert.ok(large.seconds > 2 * small.seconds, `256x256: ${large.seconds} s, 32x32: ${small.seconds} s`);
});
