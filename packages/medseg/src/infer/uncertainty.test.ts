import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { HybridNet } from '../models/hybridnet.ts';
import { createNetwork } from '../models/registry.ts';
import { hippocampusCrop, smallConfig } from '../testing/models.ts';
import { runPythonJson } from '../testing/python.ts';
import { slidingWindowLogits } from './sliding-window.ts';
import { caseUncertainty, disposeUncertaintyMaps, MemberAccumulator, predictMembers } from './uncertainty.ts';

const NUMPY_ENTROPIES = `
import json, sys, numpy as np
m = np.array(json.load(sys.stdin), dtype=np.float64).reshape(5, 3, -1)  # [S, K, voxels]

mean = m.mean(0)
H = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(0)
E = np.mean([-(p * np.log(np.clip(p, 1e-12, None))).sum(0) for p in m], axis=0)
print(json.dumps({"H": H.ravel().tolist(), "E": E.ravel().tolist(), "MI": np.clip(H - E, 0, None).ravel().tolist()}))
`;

test('predictive entropy, expected entropy and mutual information of members equal NumPy on the same probabilities', () => {
  torch.manualSeed(3);
  const S = 5;
  const members = Array.from({ length: S }, () => torch.keep(torch.F.softmax(torch.randn([3, 4, 5]).mul(2), 0)));
  const acc = new MemberAccumulator();
  for (const p of members) acc.add(p);
  const maps = acc.finish();
  const ref = runPythonJson<{ H: number[]; E: number[]; MI: number[] }>(
    ['-c', NUMPY_ENTROPIES],
    members.map((p) => p.toArray()),
  );
  const close = (a: Float32Array, b: number[], what: string) => b.forEach((v, i) => assert.ok(Math.abs(a[i]! - v) < 1e-5, `${what}[${i}]: ${a[i]} vs ${v}`));
  close(maps.predictiveEntropy.toTypedArray() as Float32Array, ref.H, 'H');
  close(maps.expectedEntropy.toTypedArray() as Float32Array, ref.E, 'E');
  close(maps.mutualInformation.toTypedArray() as Float32Array, ref.MI, 'MI');
  assert.equal(maps.members, S);
  assert.ok(
    (maps.mutualInformation.toTypedArray() as Float32Array).some((v) => v > 0.01),
    'disagreeing members have positive mutual information',
  );
  disposeUncertaintyMaps(maps);
  members.forEach((p) => p.dispose());
  assert.throws(() => new MemberAccumulator().finish(), /no member/);
});

test('TTA members are the mirrored sliding-window passes; one member has no mutual information', async () => {
  torch.manualSeed(4);
  const hip = await hippocampusCrop([16, 24, 16]);
  const net = createNetwork(smallConfig('unet', 3)).eval();
  const image = hip.image.select(0, 0); // [C, ...spatial]
  const window = { patchSize: [16, 16, 16] };
  const maps = predictMembers([net], image, { sources: ['tta'], mirrorAxes: [0, 1, 2], window });
  assert.equal(maps.members, 8);
  // The mean of the 8 mirrored passes, computed here pass by pass.
  const expected = torch.tidy(() => {
    let sum: torch.Tensor | null = null;
    for (const flip of [[], [1], [2], [1, 2], [3], [1, 3], [2, 3], [1, 2, 3]]) {
      const x = flip.length ? image.flip(flip) : image;
      const l = slidingWindowLogits(net, x, { ...window, mirrorAxes: [] });
      const p = torch.F.softmax(flip.length ? l.flip(flip) : l, 0);
      sum = sum ? sum.add(p) : p;
    }
    return sum!.div(8);
  });
  assert.ok(maps.meanProbabilities.sub(expected).abs().max().item() < 1e-6);
  // The members' mean logits are the sliding window's own TTA logits.
  const tta = slidingWindowLogits(net, image, { ...window, mirrorAxes: [0, 1, 2] });
  assert.ok(maps.meanLogits!.sub(tta).abs().max().item() < 1e-5);
  tta.dispose();
  const one = predictMembers([net], image, { sources: [], mirrorAxes: [0, 1, 2], window });
  assert.equal(one.members, 1);
  assert.ok(one.mutualInformation.max().item() < 1e-6, 'a single member has no epistemic part');
  assert.ok(one.predictiveEntropy.sub(one.expectedEntropy).abs().max().item() < 1e-6);
  const labels = one.meanProbabilities.argmax(0).toTypedArray() as unknown as Int32Array;
  const score = caseUncertainty(maps, Int32Array.from(labels, Number), 2);
  assert.ok(score.meanEntropy > 0 && score.meanEntropy <= 1, `mean normalised entropy ${score.meanEntropy}`);
  assert.ok(score.regionVoxels > 0);
  [maps, one].forEach(disposeUncertaintyMaps);
  expected.dispose();
  net.dispose();
});

test('axis-flips TTA members: the identity and one flip per axis, their mean logits the sliding window with mirrorSingleAxes', async () => {
  torch.manualSeed(6);
  const hip = await hippocampusCrop([16, 24, 16]);
  const net = createNetwork(smallConfig('unet', 3)).eval();
  const image = hip.image.select(0, 0);
  const window = { patchSize: [16, 16, 16] };
  const maps = predictMembers([net], image, { sources: ['tta'], mirrorAxes: [0, 1, 2], mirrorSingleAxes: true, window });
  assert.equal(maps.members, 4);
  const ref = slidingWindowLogits(net, image, { ...window, mirrorAxes: [0, 1, 2], mirrorSingleAxes: true });
  assert.ok(maps.meanLogits!.sub(ref).abs().max().item() < 1e-5);
  disposeUncertaintyMaps(maps);
  ref.dispose();
  net.dispose();
  torch.dispose(hip);
});

test('MC dropout: samples differ, the seed makes them reproducible, and a network without dropout is refused', async () => {
  const hip = await hippocampusCrop([16, 24, 16]);
  const image = hip.image.select(0, 0);
  const net = new HybridNet(smallConfig('hybridnet', 3, { features: [4, 8, 16], dropout: 0.3, extra: { depth: 1 } })).eval();
  const o = { sources: ['mc-dropout' as const], mirrorAxes: [], mcSamples: 4, seed: 9, window: { patchSize: [16, 16, 16] } };
  const a = predictMembers([net], image, o);
  const b = predictMembers([net], image, o);
  assert.equal(a.members, 4);
  assert.ok(a.mutualInformation.max().item() > 1e-4, 'dropout samples disagree somewhere');
  assert.ok(a.meanProbabilities.sub(b.meanProbabilities).abs().max().item() < 1e-6, 'the same seed gives the same samples');
  // Dropout is off again afterwards: two plain forwards agree.
  const again = torch.tidy(() =>
    torch.noGrad(() =>
      slidingWindowLogits(net, image, { patchSize: [16, 16, 16] })
        .sub(slidingWindowLogits(net, image, { patchSize: [16, 16, 16] }))
        .abs()
        .max()
        .item(),
    ),
  );
  assert.equal(again, 0);
  [a, b].forEach(disposeUncertaintyMaps);
  net.dispose();
  const plain = createNetwork(smallConfig('unet', 3)).eval();
  assert.throws(() => predictMembers([plain], image, o), /mc-dropout needs a network with dropout/);
  plain.dispose();
});

test('2D with transposes: the 8 members (mirrors x transposes) reproduce the sliding window with mirroring and transposing, also with a non-square patch', async () => {
  torch.manualSeed(5);
  const net = createNetwork(smallConfig('unet', 2)).eval();
  const image = torch.keep(torch.randn([1, 40, 52]));
  const window = { patchSize: [32, 24] };
  const maps = predictMembers([net], image, { sources: ['tta'], mirrorAxes: [0, 1], transposeAxes: [0, 1], window });
  assert.equal(maps.members, 8);
  const ref = slidingWindowLogits(net, image, { ...window, mirrorAxes: [0, 1], transposeAxes: [0, 1] });
  assert.ok(maps.meanLogits!.sub(ref).abs().max().item() < 1e-5);
  // A temperature changes the probabilities, not the logits or their argmax.
  const hot = predictMembers([net], image, { sources: ['tta'], mirrorAxes: [0, 1], transposeAxes: [0, 1], window, temperature: 2 });
  assert.ok(hot.meanLogits!.sub(maps.meanLogits!).abs().max().item() < 1e-6);
  assert.ok(hot.predictiveEntropy.mean().item() > maps.predictiveEntropy.mean().item(), 'T > 1 softens the probabilities');
  assert.throws(() => predictMembers([net], image, { mirrorAxes: [], window, temperature: 0 }), /temperature must be a positive number/);
  [maps, hot].forEach(disposeUncertaintyMaps);
  ref.dispose();
  image.dispose();
  net.dispose();
});
