import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { gaussianImportance, mirrorCombos, slidingWindowLogits, tileStarts, ttaOptions, ttaPasses } from './sliding-window.ts';

const { nn } = torch;

class TinyNet extends nn.Module {
  c1 = this.module('c1', new nn.Conv3d(1, 4, 3, { padding: 1 }));
  c2 = this.module('c2', new nn.Conv3d(4, 3, 1));
  forward(x: torch.Tensor): torch.Tensor {
    return this.c2.forward(torch.F.relu(this.c1.forward(x)));
  }
}

class PointwiseNet extends nn.Module {
  c = this.module('c', new nn.Conv2d(2, 3, 1));
  forward(x: torch.Tensor): torch.Tensor {
    return this.c.forward(x);
  }
}

test('tile starts cover the axis with half-patch steps, last tile flush with the end', () => {
  assert.deepEqual(tileStarts(10, 10, 0.5), [0]);
  assert.deepEqual(tileStarts(8, 10, 0.5), [0]);
  assert.deepEqual(tileStarts(20, 10, 0.5), [0, 5, 10]);
  const s = tileStarts(37, 16, 0.5);
  assert.equal(s[0], 0);
  assert.equal(s.at(-1), 37 - 16);
  for (let i = 1; i < s.length; i++) assert.ok(s[i]! - s[i - 1]! <= 8);
});

test('gaussian importance map peaks at the centre and has no zeros', () => {
  torch.tidy(() => {
    const g = gaussianImportance([9, 9]);
    assert.equal(g.max().item(), 1);
    assert.ok(g.min().item() > 0);
    assert.ok(Math.abs(g.toArray()[4 * 9 + 4]! - 1) < 1e-6);
  });
});

test('sliding window equals a single forward pass when the patch covers the image', () => {
  torch.manualSeed(1);
  const net = new TinyNet().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 12, 10, 14]);
    const sw = slidingWindowLogits(net, img, { patchSize: [12, 10, 14] });
    const direct = torch.noGrad(() => net.forward(img.unsqueeze(0)).squeeze(0));
    assert.ok(sw.allclose(direct, 1e-5, 1e-5), 'tiled result differs from single pass');
  });
  net.dispose();
});

test('sliding window of a pointwise net over many tiles equals the full-image pass (weights normalise out)', () => {
  torch.manualSeed(2);
  const net = new PointwiseNet().eval();
  torch.tidy(() => {
    const img = torch.randn([2, 37, 29]);
    const sw = slidingWindowLogits(net, img, { patchSize: [16, 12], mirrorAxes: [0, 1] });
    const direct = torch.noGrad(() => net.forward(img.unsqueeze(0)).squeeze(0));
    assert.deepEqual(sw.shape, [3, 37, 29]);
    assert.ok(sw.allclose(direct, 1e-4, 1e-5));
  });
  net.dispose();
});

test('mirroring TTA: batched mirrors, one-at-a-time mirrors and the hand-written mean of flipped passes agree', () => {
  torch.manualSeed(3);
  const net = new TinyNet().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 9, 10, 11]);
    const axes = [0, 1, 2];
    const batched = slidingWindowLogits(net, img, { patchSize: [9, 10, 11], mirrorAxes: axes });
    const single = slidingWindowLogits(net, img, { patchSize: [9, 10, 11], mirrorAxes: axes, maxBatchVoxels: 1 });
    const x = img.unsqueeze(0);
    let sum = torch.zeros([3, 9, 10, 11]);
    for (const dims of [[], [2], [3], [2, 3], [4], [2, 4], [3, 4], [2, 3, 4]]) {
      const out = torch.noGrad(() => net.forward(dims.length ? x.flip(dims) : x));
      sum = sum.add((dims.length ? out.flip(dims) : out).squeeze(0));
    }
    const manual = sum.div(8);
    assert.ok(batched.allclose(manual, 1e-5, 1e-5), 'batched mirrors differ from the manual mean');
    assert.ok(single.allclose(manual, 1e-5, 1e-5), 'one-at-a-time mirrors differ from the manual mean');
    // The conv net is not mirror-symmetric, so TTA really changes the output.
    const plain = torch.noGrad(() => net.forward(x).squeeze(0));
    assert.ok(!plain.allclose(manual, 1e-3, 1e-3));
  });
  net.dispose();
});

test('axis-flips TTA (mirrorSingleAxes): the mean of the identity and each axis flipped alone, 1 + d passes', () => {
  torch.manualSeed(5);
  const net = new TinyNet().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 9, 10, 11]);
    const o = { patchSize: [9, 10, 11], mirrorAxes: [0, 1, 2], mirrorSingleAxes: true };
    const batched = slidingWindowLogits(net, img, o);
    const single = slidingWindowLogits(net, img, { ...o, maxBatchVoxels: 1 });
    const x = img.unsqueeze(0);
    let sum = torch.zeros([3, 9, 10, 11]);
    for (const dims of [[], [2], [3], [4]]) {
      const out = torch.noGrad(() => net.forward(dims.length ? x.flip(dims) : x));
      sum = sum.add((dims.length ? out.flip(dims) : out).squeeze(0));
    }
    const manual = sum.div(4);
    assert.ok(batched.allclose(manual, 1e-5, 1e-5), 'batched axis flips differ from the manual mean');
    assert.ok(single.allclose(manual, 1e-5, 1e-5), 'one-at-a-time axis flips differ from the manual mean');
    assert.ok(!slidingWindowLogits(net, img, { ...o, mirrorSingleAxes: false }).allclose(manual, 1e-3, 1e-3), 'all 8 mirrors give another mean');
  });
  assert.deepEqual(mirrorCombos([0, 1, 2], true), [[], [0], [1], [2]]);
  assert.equal(mirrorCombos([0, 1, 2]).length, 8);
  assert.deepEqual(
    [
      ttaOptions({ mirror: true, mirrorSingleAxes: true }, 3),
      ttaOptions({ mirror: true }, 3),
      ttaOptions({ mirror: true, transpose: true }, 2),
      ttaOptions({ mirror: false, mirrorSingleAxes: true }, 3),
    ].map(ttaPasses),
    [4, 8, 8, 1],
  );
  net.dispose();
});

class TinyNet2d extends nn.Module {
  c1 = this.module('c1', new nn.Conv2d(1, 4, 3, { padding: 1 }));
  c2 = this.module('c2', new nn.Conv2d(4, 3, 3, { padding: 1 }));
  forward(x: torch.Tensor): torch.Tensor {
    return this.c2.forward(torch.F.relu(this.c1.forward(x)));
  }
}

test('mirror + transpose TTA averages all 8 symmetries of the square, so its output turns and reflects with the input', () => {
  const net = new TinyNet2d().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 12, 12]);
    const d4 = (x: torch.Tensor) => slidingWindowLogits(net, x, { patchSize: [12, 12], mirrorAxes: [0, 1], transposeAxes: [0, 1] });
    const mirrorsOnly = (x: torch.Tensor) => slidingWindowLogits(net, x, { patchSize: [12, 12], mirrorAxes: [0, 1] });
    const t = (x: torch.Tensor) => x.transpose(1, 2);
    const rot90 = (x: torch.Tensor) => x.transpose(1, 2).flip([2]);
    const out = d4(img);
    assert.ok(d4(t(img)).allclose(t(out), 1e-5, 1e-5), 'not equivariant to transposing');
    assert.ok(d4(rot90(img)).allclose(rot90(out), 1e-5, 1e-5), 'not equivariant to a quarter turn');
    // Mirrors alone are not: the check above can fail.
    assert.ok(!mirrorsOnly(rot90(img)).allclose(rot90(mirrorsOnly(img)), 1e-3, 1e-3));
    // Non-square patch over a larger image: tiles transposed to another shape still land back in place.
    const big = torch.randn([1, 20, 28]);
    const tiled = slidingWindowLogits(net, big, { patchSize: [12, 16], mirrorAxes: [0, 1], transposeAxes: [0, 1] });
    assert.deepEqual(tiled.shape, [3, 20, 28]);
    assert.ok(slidingWindowLogits(net, t(big), { patchSize: [16, 12], mirrorAxes: [0, 1], transposeAxes: [0, 1] }).allclose(t(tiled), 1e-5, 1e-5));
  });
  net.dispose();
});

test('images smaller than the patch are padded and cropped back', () => {
  const net = new TinyNet().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 5, 7, 6]);
    const sw = slidingWindowLogits(net, img, { patchSize: [8, 8, 8] });
    assert.deepEqual(sw.shape, [3, 5, 7, 6]);
  });
  net.dispose();
});

test('sliding window frees its temporaries', () => {
  const net = new TinyNet().eval();
  const before = torch.liveTensors();
  const out = slidingWindowLogits(
    net,
    torch.tidy(() => torch.randn([1, 20, 20, 20]).keep()),
    { patchSize: [8, 8, 8], mirrorAxes: [0] },
  );
  out.dispose();
  assert.equal(torch.liveTensors(), before + 1); // the kept input
  net.dispose();
});

test('sliding window in bf16: fp32 logits within bf16 precision of the fp32 pass, autocast off afterwards', () => {
  torch.manualSeed(4);
  const net = new TinyNet().eval();
  torch.tidy(() => {
    const img = torch.randn([1, 20, 18, 22]);
    const o = { patchSize: [12, 10, 14], mirrorAxes: [0, 1, 2] };
    const fp32 = slidingWindowLogits(net, img, o);
    const bf16 = slidingWindowLogits(net, img, { ...o, precision: 'bf16' });
    assert.equal(bf16.dtype, 'float32');
    assert.equal(torch.isAutocastEnabled(), false);
    const rel = bf16.sub(fp32).norm().item() / fp32.norm().item();
    assert.ok(rel < 0.01 && rel > 0, `relative L2 difference ${rel}`);
  });
  net.dispose();
});
