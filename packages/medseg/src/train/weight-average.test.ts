import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { TinySegNet } from '../testing/trainer-fixture.ts';
import { WeightAverage } from './weight-average.ts';

const flat = (m: Map<string, torch.Tensor>) => [...m.values()].flatMap((t) => Array.from(t.toFloat32Array()));

test('the running mean of three networks equals their arithmetic mean; saved and restored it goes on the same', () => {
  torch.manualSeed(1);
  const nets = [new TinySegNet(), new TinySegNet(), new TinySegNet()];
  const w = nets.map((n) => flat(n.stateDict()));
  const avg = new WeightAverage();
  assert.ok(avg.empty);
  avg.add(nets[0]!);
  avg.add(nets[1]!);
  // A checkpoint in the middle: a second average restored from the first's tensors continues identically.
  const resumed = new WeightAverage();
  resumed.restore(new Map([...avg.tensors('average.'), ['teacher.other', torch.zeros([1])]]), 'average.');
  resumed.count = avg.count;
  assert.deepEqual([...resumed.stateDict().keys()], [...nets[0]!.stateDict().keys()]);
  avg.add(nets[2]!);
  resumed.add(nets[2]!);
  assert.equal(avg.count, 3);
  const got = flat(avg.stateDict());
  got.forEach((v, i) => assert.ok(Math.abs(v - (w[0]![i]! + w[1]![i]! + w[2]![i]!) / 3) < 1e-6, `weight ${i}`));
  assert.deepEqual(flat(resumed.stateDict()), got);
  // The networks are untouched.
  nets.forEach((n, k) => assert.deepEqual(flat(n.stateDict()), w[k]));
  avg.dispose();
  resumed.dispose();
  assert.ok(avg.empty);
  assert.equal(avg.count as number, 0);
  for (const n of nets) n.dispose();
});
