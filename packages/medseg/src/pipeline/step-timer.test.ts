import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { timeTrainingStep } from './step-timer.ts';

test('timeTrainingStep times real steps of a registry network and frees everything it made', () => {
  const before = torch.liveTensors();
  const network = {
    architecture: 'unet', dims: 2 as const, inChannels: 1, numClasses: 3, features: [4, 8, 16],
    kernelSizes: [[3, 3], [3, 3], [3, 3]], strides: [[1, 1], [2, 2], [2, 2]], deepSupervision: true, norm: 'instance' as const,
  };
  const t = timeTrainingStep(network, [32, 48], 2, { reps: 3 });
  assert.equal(t.steps.length, 3);
  assert.ok(t.steps.every((s) => s > 0 && s < 30));
  assert.ok(t.seconds >= Math.min(...t.steps) && t.seconds <= Math.max(...t.steps));
  assert.equal(torch.liveTensors(), before);
  assert.throws(() => timeTrainingStep({ ...network, architecture: 'no-such-net' }, [32, 48], 2), /no-such-net/);
});
