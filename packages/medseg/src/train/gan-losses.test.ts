/** GAN losses against their definitions on tiny tensors, and spectral normalisation against torch.nn.utils.spectral_norm. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { SpectralNormConv } from '../models/gan-spectral-norm.ts';
import { runPython } from '../testing/python.ts';
import { discriminatorLoss, generatorAdversarialLoss, generatorLoss } from './gan-losses.ts';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('LSGAN and hinge losses match their definitions', () => {
  torch.tidy(() => {
    const real = torch.tensor([0.5, 2, -1, 1]);
    const fake = torch.tensor([-0.5, 0.25, 3]);
    // LSGAN D: 1/2 [mean((r - 1)^2) + mean(f^2)] = 1/2 [(0.25 + 1 + 4 + 0) / 4 + (0.25 + 0.0625 + 9) / 3]
    close(discriminatorLoss('lsgan', real, fake).item(), 0.5 * (5.25 / 4 + 9.3125 / 3));
    // LSGAN G: mean((f - 1)^2) = (2.25 + 0.5625 + 4) / 3
    close(generatorAdversarialLoss('lsgan', fake).item(), 6.8125 / 3);
    // hinge D: mean(max(0, 1 - r)) + mean(max(0, 1 + f)) = (0.5 + 0 + 2 + 0) / 4 + (0.5 + 1.25 + 4) / 3
    close(discriminatorLoss('hinge', real, fake).item(), 2.5 / 4 + 5.75 / 3);
    // hinge G: -mean(f)
    close(generatorAdversarialLoss('hinge', fake).item(), -(2.75 / 3));
    // Generator total: adversarial + lambda * mean |fake - real| image.
    const a = torch.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    const b = torch.tensor([1, 0, 4, 4], [1, 1, 2, 2]);
    const g = generatorLoss('hinge', fake, a, b, 10);
    close(g.l1.item(), 3 / 4);
    close(g.total.item(), -(2.75 / 3) + 7.5);
  });
});

test('spectral normalisation: outputs, power-iteration vectors and gradients match torch.nn.utils.spectral_norm', () => {
  torch.manualSeed(8);
  const PY = `
import json, sys, torch
res = []
for d in json.load(sys.stdin):
    dims = len(d['wshape']) - 2
    Conv = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    m = torch.nn.utils.spectral_norm(Conv(3, 5, 4, stride=2, padding=1))
    with torch.no_grad():
        m.weight_orig.copy_(torch.tensor(d['w']).reshape(d['wshape']))
        m.bias.copy_(torch.tensor(d['b']))
        m.weight_u.copy_(torch.tensor(d['u']))
        m.weight_v.copy_(torch.tensor(d['v']))
    x = torch.tensor(d['x']).reshape(d['xshape'])
    m.train()
    o1 = m(x).flatten().tolist()
    y = m(x)
    o2 = y.flatten().tolist()
    (y ** 2).sum().backward()
    m.eval()
    o3 = m(x).flatten().tolist()
    res.append({'outs': [o1, o2, o3], 'u': m.weight_u.tolist(), 'v': m.weight_v.tolist(), 'grad': m.weight_orig.grad.flatten().tolist()})
print(json.dumps(res))
`;
  const ours = ([2, 3] as const).map((dims) =>
    torch.tidy(() => {
      const sn = new SpectralNormConv(dims, 3, 5, 4, { stride: 2, padding: 1 });
      const x = torch.randn(dims === 2 ? [2, 3, 9, 8] : [1, 3, 6, 5, 6]);
      const state = {
        w: sn.weight_orig.toArray(),
        wshape: sn.weight_orig.shape,
        b: sn.bias!.toArray(),
        u: sn.weight_u.toArray(),
        v: sn.weight_v.toArray(),
        x: x.toArray(),
        xshape: x.shape,
      };
      // Two training forwards (each runs one power iteration), then one in eval mode.
      const outs: number[][] = [];
      sn.train();
      outs.push(sn.forward(x).toArray() as number[]);
      const y = sn.forward(x);
      outs.push(y.toArray() as number[]);
      y.square().sum().backward();
      const grad = sn.weight_orig.grad!.toArray() as number[];
      sn.eval();
      outs.push(sn.forward(x).toArray() as number[]);
      const r = { dims, state, outs, grad, u: sn.weight_u.toArray() as number[], v: sn.weight_v.toArray() as number[] };
      sn.dispose();
      return r;
    }),
  );
  const refs = JSON.parse(runPython(['-c', PY], { input: JSON.stringify(ours.map((o) => o.state)) })) as {
    outs: number[][];
    u: number[];
    v: number[];
    grad: number[];
  }[];
  const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  ours.forEach((o, i) => {
    const ref = refs[i]!;
    for (let k = 0; k < 3; k++)
      assert.ok(maxDiff(o.outs[k]!.flat(), ref.outs[k]!) < 1e-4, `${o.dims}D output ${k}: ${maxDiff(o.outs[k]!.flat(), ref.outs[k]!)}`);
    // The power iteration moved u between the calls, as PyTorch's did.
    assert.ok(maxDiff(o.u, o.state.u as number[]) > 1e-3, `${o.dims}D: u did not move`);
    assert.ok(maxDiff(o.u, ref.u) < 1e-5, `${o.dims}D u`);
    assert.ok(maxDiff(o.v, ref.v) < 1e-5, `${o.dims}D v`);
    assert.ok(maxDiff(o.grad, ref.grad) < 1e-3 * Math.max(1, ...ref.grad.map(Math.abs)), `${o.dims}D gradient`);
  });
});
