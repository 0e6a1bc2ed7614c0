/**
 * CPU autocast against torch.autocast('cpu', dtype=torch.bfloat16) in PyTorch
 * (the same libtorch): which ops run in bf16 and which in fp32, and a small
 * U-Net (2D and 3D: conv, instance norm, leaky ReLU, strided conv, transposed
 * conv, skip concatenation, 1x1 head) whose bf16 outputs and fp32-master-weight
 * gradients match PyTorch's bf16 run closely and PyTorch's fp32 run within
 * bf16 precision. Also the scope's contract: restored on return and on throw,
 * nested, switched off inside, weights stay fp32.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as torch from './index.ts';
import type { Tensor } from './index.ts';
import { randintT, randnT } from './testing/inputs.ts';
import { runReference, type RefOutput } from './testing/pyref.ts';

const F = torch.F;

// ---- the scope's contract ----------------------------------------------------------

test('autocast: on inside, restored after return, after throw, nested and switched off inside', () => {
  assert.equal(torch.isAutocastEnabled(), false);
  const seen: boolean[] = [];
  torch.autocast({ dtype: 'bfloat16' }, () => {
    seen.push(torch.isAutocastEnabled());
    torch.autocast({ enabled: false }, () => seen.push(torch.isAutocastEnabled()));
    seen.push(torch.isAutocastEnabled());
    torch.autocast({}, () => seen.push(torch.isAutocastEnabled()));
    seen.push(torch.isAutocastEnabled());
  });
  assert.deepEqual(seen, [true, false, true, true, true]);
  assert.equal(torch.isAutocastEnabled(), false);
  assert.throws(
    () =>
      torch.autocast({}, () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.equal(torch.isAutocastEnabled(), false);
  assert.equal(torch.autocastDtype(), 'bfloat16');
});

test('autocast: rejects an async fn and an unsupported dtype, leaving the state off', () => {
  assert.throws(() => torch.autocast({}, async () => 1), /synchronous/);
  assert.equal(torch.isAutocastEnabled(), false);
  assert.throws(() => torch.autocast({ dtype: 'float16' as 'bfloat16' }, () => 1), /bfloat16/);
  assert.equal(torch.isAutocastEnabled(), false);
});

test('autocast: a conv runs in bf16, its fp32 weight stays fp32 and gets an fp32 gradient', () => {
  torch.tidy(() => {
    const x = randnT([2, 3, 8, 8], 1);
    const w = randnT([4, 3, 3, 3], 2, { requiresGrad: true }).keep();
    const y = torch.autocast({}, () => F.conv(x, w, null, { padding: 1 }));
    assert.equal(y.dtype, 'bfloat16');
    assert.equal(w.dtype, 'float32');
    y.float().square().mean().backward();
    assert.equal(w.grad!.dtype, 'float32');
    w.dispose();
  });
});

test('bf16Support reads the CPU flags', () => {
  assert.deepEqual(torch.bf16Support('processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n'), { native: true, flags: ['avx512_bf16'] });
  assert.deepEqual(torch.bf16Support('flags : fpu amx_bf16 amx_tile'), { native: true, flags: ['amx_bf16'] });
  assert.deepEqual(torch.bf16Support('flags : fpu sse avx2'), { native: false, flags: [] });
  assert.deepEqual(torch.bf16Support(''), { native: false, flags: [] });
});

// ---- against PyTorch ---------------------------------------------------------------------
// PyTorch's reference runs on one thread; the comparisons with it run on one
// thread here too, so both sides take the same kernels and reduction orders.
let threads = 0;
before(() => {
  threads = torch.getNumThreads();
  torch.setNumThreads(1);
});
after(() => torch.setNumThreads(threads));

const AUTOCAST = "with torch.autocast('cpu', dtype=torch.bfloat16):\n";
const indent = (code: string) =>
  code
    .split('\n')
    .map((l) => '    ' + l)
    .join('\n');

/** Max |a - b| over max |b|, and relative L2 error ||a - b|| / ||b||. */
function errors(ours: Tensor, ref: RefOutput): { maxRel: number; l2Rel: number } {
  assert.ok('data' in ref);
  assert.deepEqual(ours.shape, ref.shape);
  const a = ours.to('float64').toTypedArray() as Float64Array;
  let maxDiff = 0;
  let maxRef = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - ref.data[i]!);
    maxDiff = Math.max(maxDiff, d);
    maxRef = Math.max(maxRef, Math.abs(ref.data[i]!));
    diff2 += d * d;
    ref2 += ref.data[i]! * ref.data[i]!;
  }
  return { maxRel: maxDiff / (maxRef || 1), l2Rel: Math.sqrt(diff2 / (ref2 || 1)) };
}

// Which ops autocast casts, by the dtype of their output (inputs fp32 unless noted).
const x2 = randnT([2, 4, 8, 8], 10);
const x3 = randnT([1, 4, 6, 6, 6], 11);
const wc2 = randnT([6, 4, 3, 3], 12, { scale: 0.3 });
const wc3 = randnT([6, 4, 3, 3, 3], 13, { scale: 0.3 });
const wt2 = randnT([6, 3, 2, 2], 14, { scale: 0.3 });
const wl = randnT([5, 8], 15, { scale: 0.3 });
const tgt = randintT([2, 8, 8], 16, 0, 6);
const coverageCode = `h = F.conv2d(x2, wc2, padding=1)
out = (h, F.conv3d(x3, wc3, padding=1), F.linear(x2, wl), torch.matmul(x2, x2), F.instance_norm(h), F.group_norm(h, 2),
       F.leaky_relu(h, 0.01), F.softmax(h, 1), F.conv_transpose2d(h, wt2, stride=2), F.max_pool2d(h, 2), torch.cat([h, x2], 1),
       h + x2.repeat(1, 2, 1, 1)[:, :6], F.cross_entropy(h, tgt), F.interpolate(h, scale_factor=2.0, mode='bilinear'))`;
function coverageOurs(): Tensor[] {
  const h = F.conv(x2, wc2, null, { padding: 1 });
  return [
    h,
    F.conv(x3, wc3, null, { padding: 1 }),
    F.linear(x2, wl),
    x2.matmul(x2),
    F.instanceNorm(h),
    F.groupNorm(h, 2),
    F.leakyRelu(h, 0.01),
    F.softmax(h, 1),
    F.convTranspose(h, wt2, null, { stride: 2 }),
    F.maxPool(h, 2),
    torch.cat([h, x2], 1),
    h.add(x2.repeat([1, 2, 1, 1]).narrow(1, 0, 6)),
    F.crossEntropy(h, tgt),
    F.interpolate(h, { scaleFactor: 2, mode: 'linear' }),
  ];
}
const COVERAGE_NAMES = [
  'conv2d',
  'conv3d',
  'linear',
  'matmul',
  'instance_norm',
  'group_norm',
  'leaky_relu',
  'softmax',
  'conv_transpose2d',
  'max_pool2d',
  'cat',
  'add',
  'cross_entropy',
  'interpolate',
];

/**
 * A small U-Net stage in 2D or 3D: conv-norm-lrelu, a strided conv down, a
 * transposed conv up, the skip concatenated, conv-norm-lrelu and a 1x1 head.
 * Returns [logits, loss (fp32), gradients of the fp32 parameters].
 */
function unetParams(d: 2 | 3, seed: number): Record<string, Tensor> {
  const k = (o: number, i: number, s: number) => (d === 2 ? [o, i, s, s] : [o, i, s, s, s]);
  const c = 8;
  return {
    w1: randnT(k(c, 2, 3), seed + 1, { scale: 0.3 }),
    b1: randnT([c], seed + 2, { scale: 0.1 }),
    g1: randnT([c], seed + 3, { scale: 0.1, shift: 1 }),
    e1: randnT([c], seed + 4, { scale: 0.1 }),
    w2: randnT(k(2 * c, c, 3), seed + 5, { scale: 0.2 }),
    b2: randnT([2 * c], seed + 6, { scale: 0.1 }),
    g2: randnT([2 * c], seed + 7, { scale: 0.1, shift: 1 }),
    e2: randnT([2 * c], seed + 8, { scale: 0.1 }),
    wt: randnT(k(2 * c, c, 2), seed + 9, { scale: 0.3 }),
    bt: randnT([c], seed + 10, { scale: 0.1 }),
    w3: randnT(k(c, 2 * c, 3), seed + 11, { scale: 0.2 }),
    b3: randnT([c], seed + 12, { scale: 0.1 }),
    g3: randnT([c], seed + 13, { scale: 0.1, shift: 1 }),
    e3: randnT([c], seed + 14, { scale: 0.1 }),
    w4: randnT(k(3, c, 1), seed + 15, { scale: 0.3 }),
    b4: randnT([3], seed + 16, { scale: 0.1 }),
  };
}
const PARAMS = ['w1', 'b1', 'g1', 'e1', 'w2', 'b2', 'g2', 'e2', 'wt', 'bt', 'w3', 'b3', 'g3', 'e3', 'w4', 'b4'];

function unetCode(d: 2 | 3, bf16: boolean): string {
  const net = `def block(x, w, b, g, e, stride=1):
    return F.leaky_relu(F.instance_norm(F.conv${d}d(x, w, b, stride=stride, padding=1), weight=g, bias=e), 0.01)
def net(x):
    h1 = block(x, w1, b1, g1, e1)
    h2 = block(h1, w2, b2, g2, e2, 2)
    u = F.conv_transpose${d}d(h2, wt, bt, stride=2)
    h3 = block(torch.cat([u, h1], 1), w3, b3, g3, e3)
    return F.conv${d}d(h3, w4, b4)
ps = [${PARAMS.join(', ')}]
for p in ps: p.requires_grad_(True)
`;
  const fwd = 'logits = net(x)';
  return `${net}${bf16 ? AUTOCAST + indent(fwd) : fwd}
loss = F.cross_entropy(logits.float(), y)
loss.backward()
out = (logits, loss, *[p.grad for p in ps])`;
}

function unetOurs(p: Record<string, Tensor>, x: Tensor, y: Tensor, bf16: boolean): Tensor[] {
  const ps = PARAMS.map((n) => p[n]!.detach().requiresGrad_().keep());
  const [w1, b1, g1, e1, w2, b2, g2, e2, wt, bt, w3, b3, g3, e3, w4, b4] = ps as [Tensor, ...Tensor[]] as Tensor[];
  const block = (h: Tensor, w: Tensor, b: Tensor, g: Tensor, e: Tensor, stride = 1) =>
    F.leakyRelu(F.instanceNorm(F.conv(h, w, b, { stride, padding: 1 }), g, e), 0.01);
  const net = (h: Tensor) => {
    const h1 = block(h, w1!, b1!, g1!, e1!);
    const h2 = block(h1, w2!, b2!, g2!, e2!, 2);
    const u = F.convTranspose(h2, wt!, bt!, { stride: 2 });
    const h3 = block(torch.cat([u, h1], 1), w3!, b3!, g3!, e3!);
    return F.conv(h3, w4!, b4!);
  };
  const logits = bf16 ? torch.autocast({ dtype: 'bfloat16' }, () => net(x)) : net(x);
  const loss = F.crossEntropy(logits.float(), y);
  loss.backward();
  const grads = ps.map((q) => q.grad!);
  for (const q of ps) q.dispose();
  return [logits, loss, ...grads];
}

const nets = {
  2: { p: unetParams(2, 100), x: randnT([2, 2, 16, 16], 120), y: randintT([2, 16, 16], 121, 0, 3) },
  3: { p: unetParams(3, 200), x: randnT([1, 2, 8, 8, 8], 220), y: randintT([1, 8, 8, 8], 221, 0, 3) },
} as const;
for (const n of Object.values(nets)) {
  for (const t of [...Object.values(n.p), n.x, n.y]) t.keep();
}
x2.keep();
for (const t of [x3, wc2, wc3, wt2, wl, tgt]) t.keep();

const refs = runReference([
  { name: 'coverage', code: AUTOCAST + indent(coverageCode), inputs: { x2, x3, wc2, wc3, wt2, wl, tgt } },
  ...([2, 3] as const).flatMap((d) => [
    { name: `unet${d}d bf16`, code: unetCode(d, true), inputs: { ...nets[d].p, x: nets[d].x, y: nets[d].y } },
    { name: `unet${d}d fp32`, code: unetCode(d, false), inputs: { ...nets[d].p, x: nets[d].x, y: nets[d].y } },
  ]),
]);
function ref(name: string): RefOutput[] {
  const r = refs.get(name);
  if (!r) throw new Error(`no reference for ${name}`);
  if (r instanceof Error) throw r;
  return r;
}

test('autocast vs torch.autocast: each op runs in the dtype PyTorch gives it, with the same values', () => {
  torch.tidy(() => {
    const ours = torch.autocast({}, coverageOurs);
    const theirs = ref('coverage');
    ours.forEach((t, i) => {
      const r = theirs[i]!;
      assert.ok('data' in r);
      assert.equal(t.dtype, r.dtype, `${COVERAGE_NAMES[i]}: dtype`);
      assert.ok(errors(t, r).maxRel <= 1e-6, `${COVERAGE_NAMES[i]}: ${JSON.stringify(errors(t, r))}`);
    });
    // The split this library relies on: matmul-like ops in bf16, losses in fp32.
    const dtypeOf = (name: string) => ours[COVERAGE_NAMES.indexOf(name)]!.dtype;
    assert.equal(dtypeOf('conv2d'), 'bfloat16');
    assert.equal(dtypeOf('conv3d'), 'bfloat16');
    assert.equal(dtypeOf('linear'), 'bfloat16');
    assert.equal(dtypeOf('cross_entropy'), 'float32');
  });
});

for (const d of [2, 3] as const) {
  test(`autocast vs torch.autocast: ${d}D U-Net stage, bf16 logits, fp32 loss and master-weight gradients match PyTorch's bf16 run`, () => {
    torch.tidy(() => {
      const { p, x, y } = nets[d];
      const ours = unetOurs(p, x, y, true);
      const theirs = ref(`unet${d}d bf16`);
      assert.equal(ours[0]!.dtype, 'bfloat16');
      ours.forEach((t, i) => {
        const e = errors(t, theirs[i]!);
        if (i > 0) assert.equal(t.dtype, 'float32', `output ${i} dtype`);
        // Same kernels, same thread count: equal up to fp32 summation order.
        assert.ok(e.maxRel <= 1e-4, `output ${i} (${i < 2 ? ['logits', 'loss'][i] : PARAMS[i - 2]}): ${JSON.stringify(e)}`);
      });
    });
  });

  test(`autocast: ${d}D U-Net stage in bf16 matches the fp32 run within bf16 precision (gradients checked against fp32)`, () => {
    torch.tidy(() => {
      const { p, x, y } = nets[d];
      const ours = unetOurs(p, x, y, true);
      const fp32 = ref(`unet${d}d fp32`);
      const ours32 = unetOurs(p, x, y, false);
      // Our own fp32 run equals PyTorch's fp32 run closely.
      ours32.forEach((t, i) => assert.ok(errors(t, fp32[i]!).maxRel <= 1e-4, `fp32 output ${i}: ${JSON.stringify(errors(t, fp32[i]!))}`));
      // bf16 keeps 8 significant bits (a relative step of 2^-8 = 0.4 %). Without
      // native bf16 (AVX512_BF16/AMX) the kernels round more intermediates to
      // bf16: 2.8 % on an AVX2 EPYC, where PyTorch's own bf16 run gives the same
      // numbers (the test above).
      const logitTolerance = torch.bf16Support().native ? 0.02 : 0.05;
      assert.ok(errors(ours[0]!, fp32[0]!).l2Rel <= logitTolerance, `logits vs fp32: ${JSON.stringify(errors(ours[0]!, fp32[0]!))}`);
      assert.ok(errors(ours[1]!, fp32[1]!).maxRel <= 2e-3, `loss vs fp32: ${JSON.stringify(errors(ours[1]!, fp32[1]!))}`);
      // Gradients: bf16 activations saved for backward and bf16 gradients
      // through three conv layers put a few percent of error (5-15 % relative
      // L2 at this random init, the same as PyTorch's bf16 run) on each
      // parameter's gradient, but keep its direction. A conv bias right before
      // an instance norm has a zero gradient in exact arithmetic (the norm
      // removes per-channel constants), so it is checked to stay near zero.
      let dot = 0;
      let n32 = 0;
      let n16 = 0;
      let worst = 0;
      PARAMS.forEach((name, j) => {
        const g = ours[j + 2]!;
        const r = fp32[j + 2]!;
        assert.ok('data' in r);
        const a = g.to('float64').toTypedArray() as Float64Array;
        if (['b1', 'b2', 'b3'].includes(name)) {
          const weightGrad = ours[PARAMS.indexOf('w' + name[1]) + 2]!;
          assert.ok(g.norm().item() <= 1e-3 * weightGrad.norm().item(), `${name}: gradient before a norm should vanish`);
          return;
        }
        const e = errors(g, r);
        assert.ok(e.l2Rel <= 0.25, `${name} gradient vs fp32: ${JSON.stringify(e)}`);
        worst = Math.max(worst, e.l2Rel);
        for (let i = 0; i < a.length; i++) {
          dot += a[i]! * r.data[i]!;
          n16 += a[i]! * a[i]!;
          n32 += r.data[i]! * r.data[i]!;
        }
      });
      const cosine = dot / Math.sqrt(n16 * n32);
      assert.ok(cosine >= 0.99, `gradient direction vs fp32: cosine ${cosine}`);
      // The bf16 error is there (a silent fp32 fallback would show no error at all).
      assert.ok(worst > 1e-3, `bf16 gradients equal fp32 ones (${worst}): autocast did nothing?`);
    });
  });
}

test('autocast: group norm and layer norm with fp32 affine weights take a bf16 input (PyTorch 1.13 rejects it) and run in fp32', () => {
  torch.tidy(() => {
    const x = randnT([2, 4, 8, 8], 30);
    const w = randnT([8, 4, 3, 3], 31, { scale: 0.3 });
    const g = randnT([8], 32, { shift: 1, scale: 0.1 });
    const b = randnT([8], 33, { scale: 0.1 });
    const lw = randnT([8], 34, { shift: 1, scale: 0.1 });
    const lin = randnT([8, 8], 35, { scale: 0.3 });
    const [h, gn, ln] = torch.autocast({}, () => {
      const h = F.conv(x, w, null, { padding: 1 });
      const y = F.linear(h.permute([0, 2, 3, 1]), lin);
      return [h, F.groupNorm(h, 2, g, b), F.layerNorm(y, [8], lw, b)];
    });
    assert.equal(h!.dtype, 'bfloat16');
    assert.equal(gn!.dtype, 'float32');
    assert.equal(ln!.dtype, 'float32');
    // The same norms in fp32 on the same (bf16-rounded) input.
    assert.ok(gn!.allclose(F.groupNorm(h!.float(), 2, g, b), 1e-5, 1e-5));
    const y = torch.autocast({}, () => F.linear(h!.permute([0, 2, 3, 1]), lin));
    assert.ok(ln!.allclose(F.layerNorm(y.float(), [8], lw, b), 1e-5, 1e-5));
  });
});
