/**
 * Tensor methods and tensor functions checked against PyTorch on fixed inputs:
 * shape/view ops, indexing, padding, elementwise math and comparisons with
 * broadcasting, reductions, linear algebra, in-place ops, dtype conversions and
 * factories. One Python process computes every reference (testing/pyref.ts).
 */
import * as torch from './index.ts';
import type { Tensor } from './index.ts';
import { distinctT, randintT, randnT, uniformT } from './testing/inputs.ts';
import { RefSuite } from './testing/pyref.ts';

const s = new RefSuite('tensor: ');
const f64 = { dtype: 'float64' } as const;

// ---- inputs (float64 for tight tolerances, float32 where the dtype itself matters)
const a = randnT([2, 3, 4], 1, f64);
const b = randnT([3, 1], 2, f64); // broadcasts against a's last two dims
const c = randnT([4], 3, f64);
const a32 = randnT([2, 3, 4], 4);
const b32 = randnT([2, 1, 4], 5);
const pos = uniformT([2, 3, 4], 6, 0.5, 3, f64);
const d = distinctT([3, 5], 7, f64);
const img = randnT([1, 2, 4, 5], 8, f64);
const vol = randnT([1, 2, 3, 4, 5], 9, f64);
const seq = randnT([2, 3, 6], 10, f64);
const idx = randintT([4], 11, 0, 3);
const gidx = randintT([3, 4], 12, 0, 5);
const mask = tidyMask(a);
const ints = randintT([2, 5], 13, -20, 20);
const labels = randintT([2, 3], 14, 0, 4);

function tidyMask(x: Tensor): Tensor {
  return torch.tidy(() => x.gt(0.3));
}

// ---- shape and views
s.check('reshape', { a }, 'a.reshape(4, 6)', () => a.reshape([4, 6]));
s.check('reshape -1', { a }, 'a.reshape(-1, 2)', () => a.reshape([-1, 2]));
s.check('view', { a }, 'a.view(6, 4)', () => a.view([6, 4]));
s.check('flatten', { a }, 'a.flatten(1)', () => a.flatten(1));
s.check('permute', { a }, 'a.permute(2, 0, 1)', () => a.permute([2, 0, 1]));
s.check('transpose', { a }, 'a.transpose(0, -1)', () => a.transpose(0, -1));
s.check('t', { d }, 'd.t()', () => d.t());
s.check('squeeze/unsqueeze', { a }, '(a.unsqueeze(1), a.unsqueeze(1).squeeze(1), a.unsqueeze(-1).unsqueeze(0).squeeze())', () => [
  a.unsqueeze(1),
  a.unsqueeze(1).squeeze(1),
  a.unsqueeze(-1).unsqueeze(0).squeeze(),
]);
s.check('expand', { b }, 'b.expand(2, 3, 4)', () => b.expand([2, 3, 4]));
s.check('expand -1', { b }, 'b.expand(-1, 5)', () => b.expand([-1, 5]));
s.check('expandAs', { b, a }, 'b.expand_as(a)', () => b.expandAs(a));
s.check('repeat', { b }, 'b.repeat(2, 1, 3)', () => b.repeat([2, 1, 3]));
s.check(
  'contiguous of a permuted view',
  { a },
  '(a.permute(2, 0, 1).contiguous(), a.permute(2, 0, 1).is_contiguous(), a.permute(2, 0, 1).contiguous().is_contiguous())',
  () => {
    const p = a.permute([2, 0, 1]);
    return [p.contiguous(), p.isContiguous(), p.contiguous().isContiguous()];
  },
);
s.check('slice', { a }, '(a[:, 1:3], a[..., ::2], a[:, -2:], a[1:, :, 1:4:2])', () => [
  a.slice(1, 1, 3),
  a.slice(2, undefined, undefined, 2),
  a.slice(1, -2),
  a.slice(0, 1).slice(2, 1, 4, 2),
]);
s.check('narrow', { a }, 'a.narrow(2, 1, 2)', () => a.narrow(2, 1, 2));
s.check('select', { a }, '(a.select(1, 2), a[-1])', () => [a.select(1, 2), a.select(0, -1)]);
s.check('indexSelect', { a, idx }, 'a.index_select(2, idx)', () => a.indexSelect(2, idx));
s.check('index (advanced)', { a, idx }, '(a[idx[:2]], a[:, idx[:3]])', () => [a.index([idx.slice(0, 0, 2)]), a.index([null, idx.slice(0, 0, 3)])]);
s.check('gather', { d, gidx }, 'd.gather(1, gidx)', () => d.gather(1, gidx));
s.check('scatter', { d, gidx }, '(torch.zeros(3, 5, dtype=torch.float64).scatter(1, gidx[:, :2], d[:, :2]), d.scatter(1, gidx[:, :1], 7.5))', () => [
  torch.zeros([3, 5], f64).scatter(1, gidx.slice(1, 0, 2), d.slice(1, 0, 2)),
  d.scatter(1, gidx.slice(1, 0, 1), 7.5),
]);
s.check('maskedFill / maskedSelect', { a, mask }, '(a.masked_fill(mask, -2.5), a.masked_select(mask))', () => [a.maskedFill(mask, -2.5), a.maskedSelect(mask)]);
s.check('flip', { a }, '(a.flip(0), a.flip([1, 2]))', () => [a.flip([0]), a.flip([1, 2])]);
s.check('roll', { a }, 'a.roll([1, -2], [1, 2])', () => a.roll([1, -2], [1, 2]));
s.check('split / chunk / unbind', { seq }, '(seq.split(4, 2), seq.chunk(3, 1), seq.unbind(0))', () => [seq.split(4, 2), seq.chunk(3, 1), seq.unbind(0)]);
s.check('cat', { a, pos }, '(torch.cat([a, pos], 0), torch.cat([a, pos], -1))', () => [torch.cat([a, pos], 0), torch.cat([a, pos], -1)]);
s.check('stack', { a, pos }, '(torch.stack([a, pos]), torch.stack([a, pos], 2))', () => [torch.stack([a, pos]), torch.stack([a, pos], 2)]);

// ---- padding, 1D/2D/3D (pad lists pairs from the last dim backwards, as torch)
s.check('pad constant', { img }, "F.pad(img, [1, 2, 0, 1], mode='constant', value=-1.5)", () => torch.F.pad(img, [1, 2, 0, 1], 'constant', -1.5));
s.check('pad constant negative (crop)', { img }, 'F.pad(img, [-1, 1, 1, -2])', () => torch.F.pad(img, [-1, 1, 1, -2]));
s.check('pad reflect 1D', { seq }, "F.pad(seq, [2, 3], mode='reflect')", () => torch.F.pad(seq, [2, 3], 'reflect'));
s.check('pad reflect 2D', { img }, "F.pad(img, [2, 1, 1, 3], mode='reflect')", () => torch.F.pad(img, [2, 1, 1, 3], 'reflect'));
s.check('pad reflect 3D', { vol }, "F.pad(vol, [1, 2, 2, 1, 1, 1], mode='reflect')", () => torch.F.pad(vol, [1, 2, 2, 1, 1, 1], 'reflect'));
s.check('pad replicate 1D', { seq }, "F.pad(seq, [3, 1], mode='replicate')", () => torch.F.pad(seq, [3, 1], 'replicate'));
s.check('pad replicate 2D', { img }, "F.pad(img, [2, 2, 3, 0], mode='replicate')", () => torch.F.pad(img, [2, 2, 3, 0], 'replicate'));
s.check('pad replicate 3D', { vol }, "F.pad(vol, [1, 0, 0, 2, 2, 1], mode='replicate')", () => torch.F.pad(vol, [1, 0, 0, 2, 2, 1], 'replicate'));
s.check('pad circular 2D', { img }, "F.pad(img, [1, 2, 2, 1], mode='circular')", () => torch.F.pad(img, [1, 2, 2, 1], 'circular'));

// ---- elementwise math, broadcasting
s.check('add/sub/mul/div broadcasting', { a, b, c }, '(a + b, a - c, a * b, a / c, a.add(b, alpha=2.5), a.sub(c, alpha=-0.5))', () => [
  a.add(b),
  a.sub(c),
  a.mul(b),
  a.div(c),
  a.add(b, 2.5),
  a.sub(c, -0.5),
]);
s.check('scalar arithmetic', { a }, '(a + 1.5, a - 2, a * -3.25, a / 4, 2 - a, a.add(3, alpha=2))', () => [
  a.add(1.5),
  a.sub(2),
  a.mul(-3.25),
  a.div(4),
  a.rsub(2),
  a.add(3, 2),
]);
s.check('float32 broadcasting', { a32, b32 }, '(a32 + b32, a32 * b32, a32 / (b32.abs() + 1), torch.maximum(a32, b32))', () => [
  a32.add(b32),
  a32.mul(b32),
  a32.div(b32.abs().add(1)),
  a32.maximum(b32),
]);
s.check('pow / remainder', { pos, a, b }, '(pos ** 2.5, pos ** a, a.remainder(0.7), a.remainder(pos), pos.pow(-1))', () => [
  pos.pow(2.5),
  pos.pow(a),
  a.remainder(0.7),
  a.remainder(pos),
  pos.pow(-1),
]);
s.check('maximum / minimum', { a, b }, '(torch.maximum(a, b), torch.minimum(a, b))', () => [a.maximum(b), a.minimum(b)]);
s.check(
  'unary math',
  { a, pos },
  '(a.neg(), a.abs(), a.exp(), pos.log(), pos.log1p(), pos.sqrt(), pos.rsqrt(), a.square(), pos.reciprocal(), a.sin(), a.cos(), a.tanh(), a.sigmoid(), a.relu(), a.erf())',
  () => [
    a.neg(),
    a.abs(),
    a.exp(),
    pos.log(),
    pos.log1p(),
    pos.sqrt(),
    pos.rsqrt(),
    a.square(),
    pos.reciprocal(),
    a.sin(),
    a.cos(),
    a.tanh(),
    a.sigmoid(),
    a.relu(),
    a.erf(),
  ],
);
s.check(
  'rounding and sign',
  { a },
  '((a * 3).floor(), (a * 3).ceil(), (a * 3).round(), a.sign(), torch.tensor([0.5, 1.5, 2.5, -0.5], dtype=torch.float64).round())',
  () => [a.mul(3).floor(), a.mul(3).ceil(), a.mul(3).round(), a.sign(), torch.tensor([0.5, 1.5, 2.5, -0.5], [4], f64).round()],
);
s.check('clamp', { a }, '(a.clamp(-0.5, 0.7), a.clamp(min=0.1), a.clamp(max=-0.2))', () => [a.clamp(-0.5, 0.7), a.clamp(0.1), a.clamp(null, -0.2)]);
s.check('lerp', { a, pos }, 'a.lerp(pos, 0.3)', () => a.lerp(pos, 0.3));
s.check('log of non-positive gives nan/-inf as torch', { a }, '(a.log(), torch.zeros(2, dtype=torch.float64).log())', () => [
  a.log(),
  torch.zeros([2], f64).log(),
]);
s.check('integer arithmetic keeps int64', { ints }, '(ints + 3, ints * 2, ints // 3, ints.remainder(7), ints.abs(), ints.sum(), ints.float() / 2)', () => [
  ints.add(3),
  ints.mul(2),
  torch.call('aten::floor_divide.Scalar', [ints, 3]) as Tensor,
  ints.remainder(7),
  ints.abs(),
  ints.sum(),
  ints.float().div(2),
]);

// ---- comparisons and logic (broadcasting)
s.check('comparisons with tensors', { a, b }, '(a == b, a != b, a < b, a <= b, a > b, a >= b)', () => [a.eq(b), a.ne(b), a.lt(b), a.le(b), a.gt(b), a.ge(b)]);
s.check('comparisons with scalars', { a, ints }, '(a > 0, a <= -0.5, ints == 3, ints != 0, a.lt(1), a.ge(0))', () => [
  a.gt(0),
  a.le(-0.5),
  ints.eq(3),
  ints.ne(0),
  a.lt(1),
  a.ge(0),
]);
s.check('equality on exact values', { a }, '(a == a.clone(), a.round() == a.round())', () => [a.eq(a.clone()), a.round().eq(a.round())]);
s.check('logical ops', { a, b }, '((a > 0) & (b > 0), torch.logical_or(a > 0, b > 0), torch.logical_not(a > 0))', () => [
  a.gt(0).logicalAnd(b.gt(0)),
  a.gt(0).logicalOr(b.gt(0)),
  a.gt(0).logicalNot(),
]);
s.check(
  'isnan / isfinite',
  { a },
  '(torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]).isnan(), torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]).isfinite())',
  () => {
    const v = torch.tensor([1, NaN, Infinity, -Infinity]);
    return [v.isnan(), v.isfinite()];
  },
);
s.check('allclose / equal', { a }, '(torch.allclose(a, a + 1e-9), torch.allclose(a, a + 1e-3), torch.equal(a, a.clone()), torch.equal(a, a + 1))', () => [
  a.allclose(a.add(1e-9)),
  a.allclose(a.add(1e-3)),
  a.equal(a.clone()),
  a.equal(a.add(1)),
]);

// ---- reductions over dims
s.check('sum', { a }, '(a.sum(), a.sum(1), a.sum([0, 2]), a.sum(-1, keepdim=True))', () => [a.sum(), a.sum(1), a.sum([0, 2]), a.sum(-1, true)]);
s.check('mean', { a }, '(a.mean(), a.mean(0), a.mean([1, 2], keepdim=True))', () => [a.mean(), a.mean(0), a.mean([1, 2], true)]);
s.check('prod', { pos }, '(pos.prod(), pos.prod(1), pos.prod(2, keepdim=True))', () => [pos.prod(), pos.prod(1), pos.prod(2, true)]);
s.check('max / min (values)', { a }, '(a.max(), a.min(), a.amax(1), a.amin([0, 2]), a.amax(-1, keepdim=True))', () => [
  a.max(),
  a.min(),
  a.max(1),
  a.min([0, 2]),
  a.max(-1, true),
]);
s.check('max / min with indices', { d }, '(*d.max(1), *d.min(0, keepdim=True))', () => [...d.maxWithIndices(1), ...d.minWithIndices(0, true)]);
s.check('argmax / argmin', { d }, '(d.argmax(), d.argmax(1), d.argmin(0, keepdim=True), d.argmin())', () => [
  d.argmax(),
  d.argmax(1),
  d.argmin(0, true),
  d.argmin(),
]);
s.check('var / std', { a }, '(a.var(), a.var(1), a.var([0, 2], correction=0), a.std(), a.std(-1, keepdim=True), a.std(0, correction=0))', () => [
  a.var(),
  a.var(1),
  a.var([0, 2], false, 0),
  a.std(),
  a.std(-1, true),
  a.std(0, false, 0),
]);
s.check('var / std float32', { a32 }, '(a32.var(2), a32.std([0, 1]))', () => [a32.var(2), a32.std([0, 1])]);
s.check('logsumexp', { a }, '(a.logsumexp(1), a.logsumexp([0, 2], keepdim=True), (a * 300).logsumexp(-1))', () => [
  a.logsumexp(1),
  a.logsumexp([0, 2], true),
  a.mul(300).logsumexp(-1),
]);
s.check('cumsum', { a }, '(a.cumsum(2), a.cumsum(0))', () => [a.cumsum(2), a.cumsum(0)]);
s.check('norm', { a }, '(a.norm(), a.norm(1), a.norm(3), a.norm(float("inf")))', () => [a.norm(), a.norm(1), a.norm(3), a.norm(Infinity)]);
s.check('any / all', { a }, '((a > 2).any(), (a > -5).all(), (a > 0).all(), (a > 100).any())', () => [
  a.gt(2).any(),
  a.gt(-5).all(),
  a.gt(0).all(),
  a.gt(100).any(),
]);
s.check('topk', { d }, '(*d.topk(3), *d.topk(2, dim=0, largest=False))', () => [...d.topk(3), ...d.topk(2, 0, false)]);
s.check('sort', { d }, '(*d.sort(), *d.sort(0, descending=True))', () => [...d.sort(), ...d.sort(0, true)]);
s.check('nonzero', { mask }, 'mask.nonzero()', () => mask.nonzero());

// ---- linear algebra
const m1 = randnT([3, 4], 20, f64);
const m2 = randnT([4, 5], 21, f64);
const bm1 = randnT([2, 3, 4], 22, f64);
const bm2 = randnT([2, 4, 5], 23, f64);
const v4 = randnT([4], 24, f64);
const m1f = randnT([8, 16], 25);
const m2f = randnT([16, 9], 26);
s.check('matmul 2D / mm', { m1, m2 }, '(m1 @ m2, m1.mm(m2))', () => [m1.matmul(m2), m1.mm(m2)]);
s.check('matmul broadcasting and vectors', { bm1, m2, v4, m1 }, '(bm1 @ m2, m1 @ v4, v4 @ m2, v4 @ v4)', () => [
  bm1.matmul(m2),
  m1.matmul(v4),
  v4.matmul(m2),
  v4.matmul(v4),
]);
s.check('bmm', { bm1, bm2 }, 'bm1.bmm(bm2)', () => bm1.bmm(bm2));
s.check('matmul float32', { m1f, m2f }, 'm1f @ m2f', () => m1f.matmul(m2f), { rtol: 1e-5, atol: 1e-5 });
s.check('einsum', { bm1, bm2 }, "(torch.einsum('bij,bjk->bik', bm1, bm2), torch.einsum('bij->j', bm1))", () => [
  torch.einsum('bij,bjk->bik', [bm1, bm2]),
  torch.einsum('bij->j', [bm1]),
]);

// ---- where, oneHot, clamp on integers
s.check('where (broadcasting)', { a, b, mask }, 'torch.where(mask, a, b)', () => torch.where(mask, a, b));
s.check('oneHot', { labels }, '(F.one_hot(labels), F.one_hot(labels, 6))', () => [torch.oneHot(labels), torch.oneHot(labels, 6)]);
s.check('clamp on integers', { ints }, 'ints.clamp(-5, 5)', () => ints.clamp(-5, 5));

// ---- in-place ops
s.check(
  'in-place ops',
  { a, pos, b },
  `x = a.clone()
x.add_(b, alpha=0.5); x.mul_(pos); x.sub_(1.0); x.div_(2.0)
x.addcmul_(pos, b, value=0.3); x.addcdiv_(a, pos, value=-0.7); x.lerp_(pos, 0.25)
y = x.clone().clamp_(-0.2, 0.4)
z = pos.clone().sqrt_()
w = a.clone().masked_fill_(a > 0, 9.0)
f = a.clone().fill_(3.5)
zz = a.clone().zero_()
cp = torch.empty_like(a).copy_(pos)
out = (x, y, z, w, f, zz, cp)`,
  () => {
    const x = a.clone();
    x.add_(b, 0.5).mul_(pos).sub_(1).div_(2);
    x.addcmul_(pos, b, 0.3).addcdiv_(a, pos, -0.7).lerp_(pos, 0.25);
    return [
      x,
      x.clone().clamp_(-0.2, 0.4),
      pos.clone().sqrt_(),
      a.clone().maskedFill_(a.gt(0), 9),
      a.clone().fill_(3.5),
      a.clone().zero_(),
      torch.empty(a.shape, f64).copy_(pos),
    ];
  },
);

// ---- conversions
s.check(
  'dtype conversions',
  { a, ints },
  '(a.float(), a.long(), (a * 10).to(torch.int32), ints.double(), (a > 0).to(torch.uint8), a.to(torch.float16).double())',
  () => [a.float(), a.long(), a.mul(10).to('int32'), ints.double(), a.gt(0).to('uint8'), a.to('float16').double()],
);

// ---- factories
s.check(
  'factories',
  {},
  `out = (torch.zeros(2, 3), torch.ones(2, dtype=torch.float64), torch.full((2, 2), 2.5), torch.arange(5), torch.arange(1, 2, 0.25),
 torch.arange(0, 10, 3, dtype=torch.float32), torch.linspace(-1, 1, 7), torch.eye(3), torch.tensor(3.5))`,
  () => [
    torch.zeros([2, 3]),
    torch.ones([2], f64),
    torch.full([2, 2], 2.5),
    torch.arange(5),
    torch.arange(1, 2, 0.25),
    torch.arange(0, 10, 3, { dtype: 'float32' }),
    torch.linspace(-1, 1, 7),
    torch.eye(3),
    torch.scalarTensor(3.5),
  ],
);
s.check('like factories', { a, ints }, '(torch.zeros_like(a), torch.ones_like(ints), torch.full_like(a, -1.0), torch.zeros_like(a, dtype=torch.int32))', () => [
  torch.zerosLike(a),
  torch.onesLike(ints),
  torch.fullLike(a, -1),
  torch.zerosLike(a, { dtype: 'int32' }),
]);
s.check(
  'tensor from typed arrays and numbers',
  {},
  '(torch.tensor([1, 2, 3], dtype=torch.int32), torch.tensor([[1.5, 2], [3, 4]]), torch.tensor([5, 6], dtype=torch.int64), torch.tensor([1.0, 2.0], dtype=torch.float64))',
  () => [
    torch.tensor(new Int32Array([1, 2, 3])),
    torch.tensor([1.5, 2, 3, 4], [2, 2]),
    torch.tensor([5, 6], [2], { dtype: 'int64' }),
    torch.tensor(new Float32Array([1, 2]), [2], { dtype: 'float64' }),
  ],
);
s.check('item / toArray', { a }, '(a.sum().item(), a[0, 0].tolist())', () => [a.sum().item(), ...a.select(0, 0).select(0, 0).toArray()], { rtol: 1e-12 });

s.run();
