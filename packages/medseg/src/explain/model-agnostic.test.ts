/**
 * Occlusion sensitivity and integrated gradients on a tiny network against
 * PyTorch loops written from the definitions with the same weights, and
 * integrated gradients' completeness (the attributions sum to
 * f(x) - f(baseline)).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { runPythonJson } from '../testing/python.ts';
import { TINY_CAM_NET_PY, TinyCamNet } from '../testing/explain-nets.ts';
import { occlusionTile, windowStarts } from './occlusion.ts';
import { integratedGradientsAttributions, integratedGradientsTile } from './integrated-gradients.ts';
import { targetScores } from './target.ts';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const PY = `
import json, sys, itertools
${TINY_CAM_NET_PY}
req = json.load(sys.stdin)
W = tensors(req['weights'])
x = torch.tensor(req['x'], dtype=torch.float64).reshape(req['shape'])
region = torch.tensor(req['region'], dtype=torch.float64).reshape(req['shape'][2:])
cls = req['cls']
def score(v):
    return (net(v, W)[:, cls] * region).sum()
# occlusion: mean drop over the windows covering each voxel
patch = req['shape'][2:]
win, stride = req['window'], req['stride']
def starts(size, w, s):
    if w >= size: return [0]
    out = list(range(0, size - w, s))
    return out + [size - w]
total = torch.zeros(patch, dtype=torch.float64); count = torch.zeros(patch, dtype=torch.float64)
with torch.no_grad():
    base = score(x)
    for pos in itertools.product(*[starts(p, w, s) for p, w, s in zip(patch, win, stride)]):
        v = x.clone()
        sl = tuple(slice(p, p + w) for p, w in zip(pos, win))
        v[(slice(None), slice(None)) + sl] = req['baseline']
        total[sl] += base - score(v); count[sl] += 1
occ = total / count.clamp(min=1)
# integrated gradients, midpoint rule
m = req['steps']
acc = torch.zeros_like(x)
b = torch.full_like(x, req['baseline'])
for k in range(m):
    p = (b + (k + 0.5) / m * (x - b)).requires_grad_(True)
    (g,) = torch.autograd.grad(score(p), p)
    acc += g
ig = (x - b) * acc / m
print(json.dumps({'occ': occ.flatten().tolist(), 'ig': ig.flatten().tolist()}))
`;

test('occlusion sensitivity and integrated gradients of a 2D tile equal PyTorch loops over the definitions', () => {
  torch.manualSeed(9);
  const net = new TinyCamNet(2, 2, 4, 3).eval();
  const patch = [12, 10];
  const window = [4, 3];
  const stride = [3, 2];
  const baseline = -0.5;
  const steps = 16;
  const { x, region, occ, ig } = torch.tidy(() => {
    const x = torch.randn([1, 2, ...patch]);
    const region = torch.zeros(patch);
    region.narrow(0, 2, 6).narrow(1, 3, 5).fill_(1);
    // A small batch forces several batches of occluded copies and of path points.
    const occ = occlusionTile(net, x, region, { target: { classIndex: 1 }, window, stride, baseline, maxBatchVoxels: 5 * x.numel });
    const ig = integratedGradientsAttributions(net, x, region, { target: { classIndex: 1 }, steps, baseline, maxBatchVoxels: 3 * x.numel });
    return { x: x.toFloat32Array(), region: region.toFloat32Array(), occ: occ.toFloat32Array(), ig: ig.toFloat32Array() };
  });
  const ref = runPythonJson<{ occ: number[]; ig: number[] }>(['-c', PY], {
    weights: net.weightsJson(),
    x: Array.from(x),
    shape: [1, 2, ...patch],
    region: Array.from(region),
    cls: 1,
    window,
    stride,
    baseline,
    steps,
  });
  const scale = (a: number[]) => Math.max(...a.map(Math.abs));
  assert.ok(scale(ref.occ) > 0 && scale(ref.ig) > 0);
  assert.ok(maxAbsDiff(occ, ref.occ) < 1e-4 * scale(ref.occ), `occlusion diff ${maxAbsDiff(occ, ref.occ)}`);
  assert.ok(maxAbsDiff(ig, ref.ig) < 1e-4 * scale(ref.ig), `IG diff ${maxAbsDiff(ig, ref.ig)}`);
  assert.deepEqual(windowStarts(12, 4, 3), [0, 3, 6, 8]);
  net.dispose();
});

test('integrated gradients is complete: attributions sum to f(x) - f(baseline) (3D, probability target)', () => {
  torch.manualSeed(10);
  const net = new TinyCamNet(3, 1, 3, 2).eval();
  const patch = [6, 8, 8];
  torch.tidy(() => {
    const x = torch.randn([1, 1, ...patch]);
    const region = torch
      .noGrad(() => net.forward(x))
      .select(0, 0)
      .argmax(0)
      .eq(1)
      .float();
    assert.ok(region.sum().item() > 0);
    const target = { classIndex: 1, kind: 'probability' as const };
    const f = (v: torch.Tensor) => torch.noGrad(() => targetScores(net.forward(v) as torch.Tensor, target, region).item());
    const gap = f(x) - f(torch.zerosLike(x));
    const errors = [8, 128].map((steps) => Math.abs(integratedGradientsTile(net, x, region, { target, steps }).sum().item() - gap));
    console.log(`IG completeness: f(x) - f(0) = ${gap.toFixed(4)}, |sum - gap| = ${errors.map((e) => e.toExponential(2)).join(' (8 steps), ')} (128 steps)`);
    assert.ok(Math.abs(gap) > 0.1);
    assert.ok(errors[1]! < 0.01 * Math.abs(gap), `128 steps: error ${errors[1]} of ${gap}`);
    assert.ok(errors[1]! <= errors[0]! + 1e-6, 'more steps, no larger error');
  });
  net.dispose();
});

test('a region absent from the tile gives a zero map without running the network', () => {
  const net = new TinyCamNet(2, 1, 2, 2).eval();
  torch.tidy(() => {
    const x = torch.randn([1, 1, 8, 8]);
    const none = torch.zeros([8, 8]);
    assert.equal(
      occlusionTile(net, x, none, { target: { classIndex: 1 } })
        .abs()
        .sum()
        .item(),
      0,
    );
    assert.equal(
      integratedGradientsTile(net, x, none, { target: { classIndex: 1 } })
        .abs()
        .sum()
        .item(),
      0,
    );
  });
  net.dispose();
});
