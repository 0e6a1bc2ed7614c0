/**
 * Grad-CAM and Grad-CAM++ against an independent PyTorch computation with the
 * same weights (autograd.grad of the region score with respect to the layer's
 * output, the weights and the map written out from the papers' formulas),
 * in 2D and 3D, for one tile and stitched over several tiles.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { runPythonJson } from '../testing/python.ts';
import { TINY_CAM_NET_PY, TinyCamNet } from '../testing/explain-nets.ts';
import { gradCamTile } from './gradcam.ts';
import { stitchedMap } from './stitch.ts';
import { gaussianImportance, tileLayout } from '../infer/sliding-window.ts';
import { createNetwork } from '../models/registry.ts';
import { smallConfig } from '../testing/models.ts';
import { MedsegExplainError } from './errors.ts';

const PY = `
import json, sys
${TINY_CAM_NET_PY}
def cam(x, W, region, cls, plus, kind):
    cap = []
    logits = net(x, W, cap)
    A = cap[0]
    per = torch.softmax(logits, 1) if kind == 'probability' else logits
    score = (per[:, cls] * region).sum()
    if region.sum() == 0:
        return torch.zeros(x.shape[2:], dtype=torch.float64)
    (G,) = torch.autograd.grad(score, A)
    axes = tuple(range(2, A.dim()))
    if plus:
        g2 = G ** 2; g3 = G ** 3
        denom = 2 * g2 + A.sum(axes, keepdim=True) * g3
        alpha = torch.where((G != 0) & (denom != 0), g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(G))
        w = (alpha * F.relu(G)).sum(axes, keepdim=True)
    else:
        w = G.mean(axes, keepdim=True)
    m = F.relu((w * A).sum(1, keepdim=True))
    mode = 'bilinear' if x.dim() == 4 else 'trilinear'
    return F.interpolate(m, size=list(x.shape[2:]), mode=mode, align_corners=False)[0, 0]
req = json.load(sys.stdin)
W = tensors(req['weights'])
out = []
for job in req['jobs']:
    x = torch.tensor(job['x'], dtype=torch.float64).reshape(job['shape']).requires_grad_(True)
    region = torch.tensor(job['region'], dtype=torch.float64).reshape(job['shape'][2:])
    out.append(cam(x, W, region, job['cls'], job['plus'], job['kind']).flatten().tolist())
print(json.dumps(out))
`;

interface Job {
  x: number[];
  shape: number[];
  region: number[];
  cls: number;
  plus: boolean;
  kind: 'logit' | 'probability';
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const maxOf = (a: ArrayLike<number>) => Math.max(...Array.from(a));

for (const dims of [2, 3] as const) {
  test(`Grad-CAM and Grad-CAM++ of one ${dims}D tile equal PyTorch's (logit and probability targets, region = predicted mask)`, () => {
    torch.manualSeed(3);
    const net = new TinyCamNet(dims, 2, 4, 3).eval();
    const spatial = dims === 2 ? [8, 10] : [6, 8, 4];
    const jobs: Job[] = [];
    const ours: Float32Array[] = [];
    torch.tidy(() => {
      const x = torch.randn([1, 2, ...spatial]);
      const logits = torch.noGrad(() => net.forward(x));
      const predicted = [1, 2].filter((cls) => logits.select(0, 0).argmax(0).eq(cls).sum().item() > 0);
      assert.ok(predicted.length > 0, 'some foreground class is predicted');
      for (const cls of predicted) {
        const region = logits.select(0, 0).argmax(0).eq(cls).float();
        for (const plus of [false, true]) {
          for (const kind of ['logit', 'probability'] as const) {
            ours.push(gradCamTile(net, x, region, { layer: 'features', target: { classIndex: cls, kind }, plusPlus: plus }).toFloat32Array());
            jobs.push({ x: Array.from(x.toFloat32Array()), shape: x.shape, region: Array.from(region.toFloat32Array()), cls, plus, kind });
          }
        }
      }
    });
    const expected = runPythonJson<number[][]>(['-c', PY], { weights: net.weightsJson(), jobs });
    expected.forEach((e, i) => {
      assert.ok(maxOf(e) > 0, `job ${i}: the reference map is not all zero`);
      assert.ok(
        maxAbsDiff(ours[i]!, e) < 1e-4 * Math.max(1, maxOf(e)),
        `job ${i} (${jobs[i]!.plus ? 'Grad-CAM++' : 'Grad-CAM'}, ${jobs[i]!.kind}): max diff ${maxAbsDiff(ours[i]!, e)}`,
      );
    });
    // Grad-CAM and Grad-CAM++ differ on this net (the check above is not the same map twice).
    assert.ok(maxAbsDiff(ours[0]!, ours[2]!) > 1e-3);
    net.dispose();
  });
}

test('Grad-CAM stitched over several tiles is the Gaussian-weighted blend of the per-tile maps PyTorch computes', () => {
  torch.manualSeed(5);
  const net = new TinyCamNet(2, 1, 3, 2).eval();
  const spatial = [14, 12];
  const patch = [8, 8];
  const layout = tileLayout(spatial, patch, 0.5);
  assert.ok(layout.tiles.length >= 4);
  const { x, region, stitched, weight } = torch.tidy(() => {
    const x = torch.randn([1, ...spatial]);
    // A box region: part of the image only, so some tiles see none of it.
    const region = torch.zeros(spatial);
    region.narrow(0, 1, 3).narrow(1, 0, 3).fill_(1);
    const stitched = stitchedMap(x, region, { patchSize: patch }, (t, r) => gradCamTile(net, t, r, { layer: 'features', target: { classIndex: 1 } }));
    return { x: x.toFloat32Array(), region: region.toFloat32Array(), stitched: stitched.toFloat32Array(), weight: gaussianImportance(patch).toFloat32Array() };
  });
  const jobs: Job[] = layout.tiles.map((start) => {
    const tx: number[] = [];
    const tr: number[] = [];
    for (let i = 0; i < patch[0]!; i++)
      for (let j = 0; j < patch[1]!; j++) {
        const k = (start[0]! + i) * spatial[1]! + start[1]! + j;
        tx.push(x[k]!);
        tr.push(region[k]!);
      }
    return { x: tx, shape: [1, 1, ...patch], region: tr, cls: 1, plus: false, kind: 'logit' };
  });
  const maps = runPythonJson<number[][]>(['-c', PY], { weights: net.weightsJson(), jobs });
  const acc = new Float64Array(spatial[0]! * spatial[1]!);
  const norm = new Float64Array(acc.length);
  layout.tiles.forEach((start, t) => {
    for (let i = 0; i < patch[0]!; i++)
      for (let j = 0; j < patch[1]!; j++) {
        const k = (start[0]! + i) * spatial[1]! + start[1]! + j;
        acc[k]! += maps[t]![i * patch[1]! + j]! * weight[i * patch[1]! + j]!;
        norm[k]! += weight[i * patch[1]! + j]!;
      }
  });
  const expected = Array.from(acc, (a, k) => a / norm[k]!);
  assert.ok(maxOf(expected) > 0);
  assert.ok(
    maps.some((m) => maxOf(m) === 0),
    'some tile sees none of the region',
  );
  assert.ok(maxAbsDiff(stitched, expected) < 1e-4 * maxOf(expected), `max diff ${maxAbsDiff(stitched, expected)}`);
  net.dispose();
});

test('a layer whose output is not a channels-first feature map of the tile is refused with a hint', () => {
  torch.manualSeed(6);
  const net = createNetwork(smallConfig('swin-unetr', 2, { deepSupervision: false, extra: { window: 2 } })).eval();
  torch.tidy(() => {
    const x = torch.randn([1, 1, 16, 16]);
    const region = torch.ones([16, 16]);
    // stages.1 gives channels-last tokens [1, 4, 4, 16]; skip_blocks.1 the channels-first map [1, 8, 8, 8].
    assert.throws(
      () => gradCamTile(net, x, region, { layer: 'stages.1', target: { classIndex: 1 } }),
      (e: unknown) => e instanceof MedsegExplainError && /not a feature map .* choose a convolutional layer/.test(e.message),
    );
    const cam = gradCamTile(net, x, region, { layer: 'skip_blocks.1', target: { classIndex: 1 } });
    assert.deepEqual(cam.shape, [16, 16]);
    assert.ok(cam.max().item() > 0);
  });
  net.dispose();
});
