/**
 * Attention rollout against a NumPy product written from the paper (identity
 * added for the residual, rows renormalised, blocks multiplied last on the
 * left); the maps of a real TransUNet tile against PyTorch given the
 * attention the network recorded; Swin windows scattered to the full matrix
 * against an index computation by hand; attention-gate coefficients on the tile.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { runPythonJson } from '../testing/python.ts';
import { smallConfig } from '../testing/models.ts';
import { createNetwork, lastActivations } from '../models/registry.ts';
import { SwinBlock } from '../models/blocks-swin.ts';
import { attentionMapNames, attentionMapsTile, attentionRollout, rolloutMap, swinGlobalAttention } from './attention.ts';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const ROLLOUT_PY = `
import json, sys
import numpy as np
req = json.load(sys.stdin)
N, L = req['N'], req['L']
mats = [np.array(m, dtype=np.float64).reshape(N, L, L) for m in req['mats']]
R = np.stack([np.eye(L)] * N)
for A in mats:
    Ah = 0.5 * A + 0.5 * np.eye(L)
    Ah = Ah / Ah.sum(-1, keepdims=True)
    R = np.einsum('nij,njk->nik', Ah, R)
w = np.array(req['w'], dtype=np.float64).reshape(N, L)
w = w / w.sum(-1, keepdims=True)
m = np.einsum('nq,nqk->nk', w, R)
print(json.dumps({'R': R.flatten().tolist(), 'map': m.flatten().tolist(), 'mean': R.mean(1).flatten().tolist()}))
`;

test('attention rollout equals the NumPy product of (A + I)/2 with renormalised rows, and its region-weighted map', () => {
  torch.manualSeed(2);
  const N = 2;
  const L = 6;
  const mats = [0, 1, 2].map(() => torch.tidy(() => torch.F.softmax(torch.randn([N, L, L]).mul(2), -1).keep()));
  const w = torch.tensor([1, 0, 0.5, 0, 0, 1, 0, 0, 0, 1, 1, 0], [N, L]);
  const R = attentionRollout(mats);
  const map = rolloutMap(R, w);
  const mean = rolloutMap(R, null);
  const ref = runPythonJson<{ R: number[]; map: number[]; mean: number[] }>(['-c', ROLLOUT_PY], {
    N,
    L,
    mats: mats.map((m) => Array.from(m.toFloat32Array())),
    w: Array.from(w.toFloat32Array()),
  });
  assert.ok(maxAbsDiff(R.toFloat32Array(), ref.R) < 1e-5, `rollout diff ${maxAbsDiff(R.toFloat32Array(), ref.R)}`);
  assert.ok(maxAbsDiff(map.toFloat32Array(), ref.map) < 1e-5);
  assert.ok(maxAbsDiff(mean.toFloat32Array(), ref.mean) < 1e-5);
  // Rows of a rollout are distributions.
  assert.ok(R.sum(-1).sub(1).abs().max().item() < 1e-5);
  for (const t of [...mats, w, R, map, mean]) t.dispose();
});

const TRANSUNET_PY = `
import json, sys
import numpy as np, torch, torch.nn.functional as F
req = json.load(sys.stdin)
L, grid, patch = req['L'], req['grid'], req['patch']
R = np.eye(L)
for m in req['mats']:
    A = np.array(m, dtype=np.float64).reshape(L, L)
    Ah = 0.5 * A + 0.5 * np.eye(L)
    Ah = Ah / Ah.sum(-1, keepdims=True)
    R = Ah @ R
region = torch.tensor(req['region'], dtype=torch.float64).reshape([1, 1] + patch)
w = F.adaptive_avg_pool2d(region, grid).flatten().numpy()
m = (w / w.sum()) @ R
up = F.interpolate(torch.tensor(m).reshape([1, 1] + grid), size=patch, mode='bilinear', align_corners=False)
print(json.dumps(up.flatten().tolist()))
`;

test('TransUNet tile: the rollout map is the rollout of the blocks it recorded, region-weighted and upsampled (PyTorch)', () => {
  torch.manualSeed(4);
  const net = createNetwork(smallConfig('transunet', 2, { deepSupervision: false, extra: { depth: 3 } })).eval();
  const patch = [16, 16];
  const x = torch.randn([1, 1, ...patch]);
  const region = torch.zeros(patch);
  region.narrow(0, 3, 6).narrow(1, 8, 5).fill_(1);
  const maps = attentionMapsTile(net, x, region);
  assert.deepEqual([...maps.keys()], ['rollout.transformer']);
  const recorded = torch.tidy(() => {
    torch.noGrad(() => net.forward(x));
    const acts = lastActivations(net);
    return [0, 1, 2].map((i) => Array.from(acts.get(`transformer.block${i}.attn`)!.toFloat32Array()));
  });
  const ref = runPythonJson<number[]>(['-c', TRANSUNET_PY], { L: 16, grid: [4, 4], patch, mats: recorded, region: Array.from(region.toFloat32Array()) });
  const ours = maps.get('rollout.transformer')!.toFloat32Array();
  assert.ok(maxAbsDiff(ours, ref) < 1e-5, `diff ${maxAbsDiff(ours, ref)}`);
  assert.ok(Math.max(...ours) > 0);
  assert.deepEqual(attentionMapNames(net, patch), ['rollout.transformer']);
  torch.dispose([x, region, ...maps.values()]);
  net.dispose();
});

test('Swin window attention scattered to the full matrix: each entry is the window attention of the two tokens when they share a (shifted, padded) window, else 0', () => {
  for (const [grid, shifted] of [
    [[8, 8], true],
    [[6, 6], true],
    [[8, 8], false],
  ] as const) {
    const window = [4, 4];
    const block = new SwinBlock(4, 1, window, shifted);
    const P = grid.map((g) => Math.ceil(g / 4) * 4);
    const s = shifted ? [2, 2] : [0, 0];
    const nW = (P[0]! / 4) * (P[1]! / 4);
    torch.manualSeed(6);
    const attn = torch.tidy(() => torch.F.softmax(torch.randn([nW, 1, 16, 16]), -1));
    const full = swinGlobalAttention(block, attn, [...grid]).toFloat32Array();
    const a = attn.toFloat32Array();
    const L = grid[0] * grid[1];
    // By hand: after rolling by -s the token at p sits at (p - s) mod P; windows of 4 in row-major window order.
    const where = (q: number) => {
      const y = (Math.floor(q / grid[1]) - s[0]! + P[0]!) % P[0]!;
      const x = ((q % grid[1]) - s[1]! + P[1]!) % P[1]!;
      return { win: Math.floor(y / 4) * (P[1]! / 4) + Math.floor(x / 4), slot: (y % 4) * 4 + (x % 4) };
    };
    for (let q = 0; q < L; q++) {
      const wq = where(q);
      let rowSum = 0;
      for (let k = 0; k < L; k++) if (where(k).win === wq.win) rowSum += a[(wq.win * 16 + wq.slot) * 16 + where(k).slot]!;
      for (let k = 0; k < L; k++) {
        const wk = where(k);
        const expected = wk.win === wq.win ? a[(wq.win * 16 + wq.slot) * 16 + wk.slot]! / rowSum : 0;
        assert.ok(Math.abs(full[q * L + k]! - expected) < 1e-6, `grid ${grid} shift ${shifted}: entry ${q},${k}: ${full[q * L + k]} vs ${expected}`);
      }
    }
    attn.dispose();
    block.dispose();
  }
});

test('Swin-UNETR, HybridNet and Attention U-Net tiles give their rollouts and gate maps on the tile grid; gate 0 is the recorded coefficient itself', () => {
  torch.manualSeed(8);
  const cases: [string, string[]][] = [
    ['swin-unetr', ['rollout.swin.stage1', 'rollout.swin.stage2']],
    ['hybridnet', ['rollout.transformer', 'cbam.skip1.spatial', 'attention.gate1', 'cbam.skip0.spatial', 'attention.gate0']],
    ['attention-unet', ['attention.gate1', 'attention.gate0']],
  ];
  for (const [arch, names] of cases) {
    const net = createNetwork(smallConfig(arch, 2, { deepSupervision: false, dropout: 0, extra: { window: 2 } })).eval();
    const patch = [16, 16];
    torch.tidy(() => {
      const x = torch.randn([1, 1, ...patch]);
      const maps = attentionMapsTile(net, x, torch.ones(patch));
      assert.deepEqual([...maps.keys()], names, arch);
      for (const [name, m] of maps) {
        assert.deepEqual(m.shape, patch, `${arch} ${name}`);
        assert.ok(m.isfinite().all().item() && m.max().item() > 0, `${arch} ${name} is finite and not all zero`);
      }
      if (maps.has('attention.gate0')) {
        torch.noGrad(() => net.forward(x));
        const alpha = lastActivations(net).get('attention.gate0')!;
        assert.ok(maps.get('attention.gate0')!.sub(alpha.reshape(patch)).abs().max().item() < 1e-6);
      }
    });
    net.dispose();
  }
});
