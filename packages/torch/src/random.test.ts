/**
 * Random factories with seeded Generators: reproducible for a seed, different
 * across seeds, within range, with the right statistics, and (both sides being
 * libtorch's CPU generator) identical to torch.Generator().manual_seed(seed).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from './index.ts';
import { RefSuite } from './testing/pyref.ts';

const gen = (seed: number) => new torch.Generator(seed);
const s = new RefSuite('random: ');

s.check(
  'rand / randn / randint / randperm with a seeded generator equal torch',
  {},
  `g = torch.Generator().manual_seed(123)
a = torch.rand(3, 4, generator=g); b = torch.randn(5, generator=g); c = torch.randint(2, 9, (6,), generator=g); d = torch.randperm(7, generator=g)
out = (a, b, c, d)`,
  () => {
    const g = gen(123);
    return [
      torch.rand([3, 4], { generator: g }),
      torch.randn([5], { generator: g }),
      torch.randint(2, 9, [6], { generator: g }),
      torch.randperm(7, { generator: g }),
    ];
  },
);
s.check(
  'manualSeed drives the default generator as torch.manual_seed',
  {},
  `torch.manual_seed(77)
out = (torch.rand(4), torch.randn(2, 2))`,
  () => {
    torch.manualSeed(77);
    return [torch.rand([4]), torch.randn([2, 2])];
  },
);
s.check(
  'float64 and uniform_/normal_ in place with a generator',
  {},
  `g = torch.Generator().manual_seed(5)
out = (torch.rand(3, dtype=torch.float64, generator=g), torch.empty(4).uniform_(-2, 3, generator=g), torch.empty(4).normal_(1, 0.5, generator=g))`,
  () => {
    const g = gen(5);
    return [torch.rand([3], { dtype: 'float64', generator: g }), torch.empty([4]).uniform_(-2, 3, g), torch.empty([4]).normal_(1, 0.5, g)];
  },
);
s.run();

test('random: the same seed gives the same values, different seeds differ', () => {
  torch.tidy(() => {
    for (const make of [
      (g: torch.Generator) => torch.rand([50], { generator: g }),
      (g: torch.Generator) => torch.randn([50], { generator: g }),
      (g: torch.Generator) => torch.randint(0, 1000, [50], { generator: g }),
      (g: torch.Generator) => torch.bernoulli(0.5, [50], { generator: g }),
      (g: torch.Generator) => torch.randperm(50, { generator: g }),
    ]) {
      assert.ok(make(gen(42)).equal(make(gen(42))));
      assert.ok(!make(gen(42)).equal(make(gen(43))));
    }
    // Successive draws from one generator differ; getState/setState replays them.
    const g = gen(9);
    const state = g.getState();
    const first = torch.rand([10], { generator: g });
    assert.ok(!torch.rand([10], { generator: g }).equal(first));
    g.setState(state);
    assert.ok(torch.rand([10], { generator: g }).equal(first));
    // The default generator's state round-trips too.
    torch.manualSeed(3);
    const st = torch.getRngState();
    const r1 = torch.randn([6]);
    torch.setRngState(st);
    assert.ok(torch.randn([6]).equal(r1));
  });
});

test('random: rand lies in [0, 1) and is uniform; randn has mean 0, std 1', () => {
  torch.tidy(() => {
    const u = torch.rand([100000], { generator: gen(1) });
    assert.ok(u.min().item() >= 0 && u.max().item() < 1);
    // Mean 1/2 (sd 0.0009), variance 1/12.
    assert.ok(Math.abs(u.mean().item() - 0.5) < 0.005);
    assert.ok(Math.abs(u.var().item() - 1 / 12) < 0.002);
    const hist = torch.oneHot(u.mul(10).floor().long(), 10).sum(0).toArray();
    for (const h of hist) assert.ok(Math.abs(h - 10000) < 500, `decile count ${h}`);
    const n = torch.randn([100000], { generator: gen(2) });
    assert.ok(Math.abs(n.mean().item()) < 0.015);
    assert.ok(Math.abs(n.std().item() - 1) < 0.015);
  });
});

test('random: randint covers exactly [low, high) as int64', () => {
  torch.tidy(() => {
    const r = torch.randint(-3, 4, [5000], { generator: gen(3) });
    assert.equal(r.dtype, 'int64');
    assert.equal(r.min().item(), -3);
    assert.equal(r.max().item(), 3);
    const counts = torch.oneHot(r.add(3), 7).sum(0).toArray();
    for (const c of counts) assert.ok(c > 600 && c < 830, `count ${c} of ~714`);
  });
});

test('random: bernoulli mean matches p (scalar p and per-element probabilities)', () => {
  torch.tidy(() => {
    for (const p of [0.1, 0.5, 0.9]) {
      const b = torch.bernoulli(p, [40000], { generator: gen(4) });
      const m = b.mean().item();
      assert.ok(Math.abs(m - p) < 0.01, `p=${p}: mean ${m}`);
      assert.ok(b.eq(0).logicalOr(b.eq(1)).all().item() === 1);
    }
    const probs = torch.tensor([0, 0.25, 1, 0.75], [4]).unsqueeze(0).expand([20000, 4]).contiguous();
    const draws = torch
      .bernoulli(probs, undefined, { generator: gen(5) })
      .mean(0)
      .toArray();
    [0, 0.25, 1, 0.75].forEach((p, i) => assert.ok(Math.abs(draws[i]! - p) < 0.015, `column ${i}: ${draws[i]}`));
  });
});

test('random: randperm is a permutation', () => {
  torch.tidy(() => {
    const p = torch.randperm(1000, { generator: gen(6) });
    const sorted = p.sort()[0];
    assert.ok(sorted.equal(torch.arange(1000)));
    assert.ok(!p.equal(torch.arange(1000)));
  });
});
