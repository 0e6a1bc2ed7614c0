/**
 * Optimizers, gradient clipping and LR schedules against torch.optim: the same
 * initial parameters and the same fixed gradient sequence must give the same
 * parameters; schedules the same learning rates. Optimizer state dicts must
 * resume training exactly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '../index.ts';
import type { Tensor } from '../index.ts';
import { randnT } from '../testing/inputs.ts';
import { RefSuite } from '../testing/pyref.ts';

const optim = torch.optim;
const s = new RefSuite('optim: ');
const STEPS = 6;
const TOL = { rtol: 1e-6, atol: 1e-6 };

// Two parameters and a fixed gradient sequence for each ([STEPS, ...shape]).
const p0 = randnT([3, 4], 1);
const p1 = randnT([5], 2);
const g0 = randnT([STEPS, 3, 4], 3);
const g1 = randnT([STEPS, 5], 4, { scale: 3 });

function runOurs(make: (ps: Tensor[]) => torch.optim.Optimizer, steps = STEPS): Tensor[] {
  const ps = [p0.clone().requiresGrad_(true), p1.clone().requiresGrad_(true)];
  const opt = make(ps);
  for (let k = 0; k < steps; k++) {
    ps[0]!.grad = g0.select(0, k).clone();
    ps[1]!.grad = g1.select(0, k).clone();
    opt.step();
  }
  opt.dispose();
  return ps.map((p) => p.detach());
}

function optimizerCase(name: string, pyCtor: string, make: (ps: Tensor[]) => torch.optim.Optimizer): void {
  s.check(
    name,
    { p0, p1, g0, g1 },
    `ps = [p0.clone().requires_grad_(), p1.clone().requires_grad_()]
opt = ${pyCtor}
for k in range(${STEPS}):
    ps[0].grad = g0[k].clone(); ps[1].grad = g1[k].clone()
    opt.step()
out = [p.detach() for p in ps]`,
    () => runOurs(make),
    TOL,
  );
}

optimizerCase('SGD plain', 'torch.optim.SGD(ps, lr=0.1)', (ps) => new optim.SGD(ps, { lr: 0.1 }));
optimizerCase('SGD momentum', 'torch.optim.SGD(ps, lr=0.05, momentum=0.9)', (ps) => new optim.SGD(ps, { lr: 0.05, momentum: 0.9 }));
optimizerCase(
  'SGD momentum + dampening + weight decay',
  'torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)',
  (ps) => new optim.SGD(ps, { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 }),
);
optimizerCase(
  'SGD Nesterov + weight decay',
  'torch.optim.SGD(ps, lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)',
  (ps) => new optim.SGD(ps, { lr: 0.01, momentum: 0.99, nesterov: true, weightDecay: 3e-5 }),
);
optimizerCase('Adam defaults', 'torch.optim.Adam(ps)', (ps) => new optim.Adam(ps));
optimizerCase(
  'Adam lr, betas, eps, weight decay',
  'torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)',
  (ps) => new optim.Adam(ps, { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 }),
);
optimizerCase('Adam amsgrad', 'torch.optim.Adam(ps, lr=0.02, amsgrad=True)', (ps) => new optim.Adam(ps, { lr: 0.02, amsgrad: true }));
optimizerCase('AdamW defaults (weight decay 0.01)', 'torch.optim.AdamW(ps)', (ps) => new optim.AdamW(ps));
optimizerCase(
  'AdamW weight decay 0.1, amsgrad',
  'torch.optim.AdamW(ps, lr=3e-3, weight_decay=0.1, amsgrad=True)',
  (ps) => new optim.AdamW(ps, { lr: 3e-3, weightDecay: 0.1, amsgrad: true }),
);
optimizerCase(
  'parameter groups with their own lr and weight decay',
  "torch.optim.AdamW([{'params': [ps[0]], 'lr': 0.01}, {'params': [ps[1]], 'weight_decay': 0.5}], lr=1e-3)",
  (ps) =>
    new optim.AdamW(
      [
        { params: [ps[0]!], lr: 0.01 },
        { params: [ps[1]!], lr: 1e-3, weightDecay: 0.5 },
      ],
      { lr: 1e-3 },
    ),
);

// ---- gradient clipping ----------------------------------------------------------------------------
for (const [normType, py] of [
  [2, '2.0'],
  [1, '1.0'],
  [Infinity, "float('inf')"],
] as const) {
  for (const maxNorm of [1.5, 1000]) {
    s.check(
      `clipGradNorm norm ${normType} maxNorm ${maxNorm}`,
      { p0, p1, g0, g1 },
      `ps = [p0.clone().requires_grad_(), p1.clone().requires_grad_()]
ps[0].grad = g0[0].clone(); ps[1].grad = g1[0].clone()
n = torch.nn.utils.clip_grad_norm_(ps, ${maxNorm}, norm_type=${py})
out = (n.item(), ps[0].grad, ps[1].grad)`,
      () => {
        const ps = [p0.clone().requiresGrad_(true), p1.clone().requiresGrad_(true)];
        ps[0]!.grad = g0.select(0, 0).clone();
        ps[1]!.grad = g1.select(0, 0).clone();
        const n = optim.clipGradNorm(ps, maxNorm, normType);
        return [n, ps[0]!.grad!, ps[1]!.grad!];
      },
      TOL,
    );
  }
}

// ---- schedules --------------------------------------------------------------------------------------
function lrsOf(make: (o: torch.optim.Optimizer) => { step(): void }, steps: number, lr = 0.1): number[] {
  const p = torch.zeros([1]).requiresGrad_(true);
  const opt = new optim.SGD([p], { lr });
  const sched = make(opt);
  const out = [opt.groups[0]!.lr];
  for (let i = 0; i < steps; i++) {
    sched.step();
    out.push(opt.groups[0]!.lr);
  }
  return out;
}
const pySched = (ctor: string, steps: number) => `p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.1)
sch = ${ctor}
out = [opt.param_groups[0]['lr']]
for _ in range(${steps}):
    opt.step(); sch.step(); out.append(opt.param_groups[0]['lr'])`;
s.check('StepLR', {}, pySched('torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)', 12), () => lrsOf((o) => new optim.StepLR(o, 3, 0.5), 12), {
  rtol: 1e-12,
  atol: 1e-15,
});
s.check(
  'PolyLR equals torch PolynomialLR(power=0.9) and the nnU-Net formula',
  {},
  `${pySched('torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=10, power=0.9)', 12)}
out = (out, [0.1 * (1 - min(t, 10) / 10) ** 0.9 for t in range(13)])`,
  () => {
    const l = lrsOf((o) => new optim.PolyLR(o, 10, 0.9), 12);
    return [l, l];
  },
  { rtol: 1e-9, atol: 1e-15 },
);
const metrics = [1, 0.9, 0.95, 0.91, 0.92, 0.9, 0.89999, 0.93, 0.94, 0.5, 0.6, 0.7, 0.8, 0.4, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46];
for (const [mode, metricSign] of [
  ['min', 1],
  ['max', -1],
] as const) {
  const seq = metrics.map((m) => m * metricSign);
  s.check(
    `ReduceLROnPlateau mode ${mode} (patience, threshold, cooldown, minLr)`,
    {},
    `p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.1)
sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode='${mode}', factor=0.5, patience=2, threshold=1e-4, cooldown=1, min_lr=0.02)
out = []
for m in ${JSON.stringify(seq)}:
    sch.step(m); out.append(opt.param_groups[0]['lr'])`,
    () => {
      const p = torch.zeros([1]).requiresGrad_(true);
      const opt = new optim.SGD([p], { lr: 0.1 });
      const sch = new optim.ReduceLROnPlateau(opt, { mode, factor: 0.5, patience: 2, threshold: 1e-4, cooldown: 1, minLr: 0.02 });
      return seq.map((m) => {
        sch.step(m);
        return opt.groups[0]!.lr;
      });
    },
    { rtol: 1e-12, atol: 1e-15 },
  );
}

s.run();

test('optim: CosineWarmupLR follows its documented formula', () => {
  torch.tidy(() => {
    const base = 0.1;
    const minLr = 0.001;
    const warmup = 4;
    const total = 20;
    const lrs = lrsOf((o) => new optim.CosineWarmupLR(o, warmup, total, minLr), 25, base);
    // Linear warm-up: base * (t + 1) / (warmup + 1) for t < warmup, reaching base at t = warmup.
    for (let t = 0; t < warmup; t++) assert.ok(Math.abs(lrs[t]! - (base * (t + 1)) / (warmup + 1)) < 1e-15);
    assert.ok(Math.abs(lrs[warmup]! - base) < 1e-15);
    // Cosine decay: halfway between base and minLr at the middle, minLr from totalSteps on.
    const mid = warmup + (total - warmup) / 2;
    assert.ok(Math.abs(lrs[mid]! - (base + minLr) / 2) < 1e-12);
    for (let t = warmup; t <= total; t++) {
      const expected = minLr + 0.5 * (base - minLr) * (1 + Math.cos((Math.PI * (t - warmup)) / (total - warmup)));
      assert.ok(Math.abs(lrs[t]! - expected) < 1e-12, `t=${t}`);
    }
    for (let t = total; t < lrs.length; t++) assert.ok(Math.abs(lrs[t]! - minLr) < 1e-15);
    for (let t = 1; t <= warmup; t++) assert.ok(lrs[t]! > lrs[t - 1]!);
    for (let t = warmup + 1; t <= total; t++) assert.ok(lrs[t]! < lrs[t - 1]!);
  });
});

test('optim: state dict round trip (through safetensors + JSON) resumes training exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'optim-sd-'));
  try {
    torch.tidy(() => {
      for (const make of [
        (ps: Tensor[]) => new optim.AdamW(ps, { lr: 0.01, amsgrad: true }),
        (ps: Tensor[]) => new optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true }),
      ]) {
        const straight = runOurs(make, STEPS);

        // First half, then checkpoint params + optimizer state to disk.
        const ps = [p0.clone().requiresGrad_(true), p1.clone().requiresGrad_(true)];
        const opt = make(ps);
        const sched = new optim.StepLR(opt, 2, 0.5);
        const half = STEPS / 2;
        for (let k = 0; k < half; k++) {
          ps[0]!.grad = g0.select(0, k).clone();
          ps[1]!.grad = g1.select(0, k).clone();
          opt.step();
        }
        const sd = opt.stateDict();
        const file = join(dir, 'opt.safetensors');
        torch.saveSafetensors(file, sd.tensors);
        const meta = JSON.stringify({ opt: sd.meta, sched: sched.stateDict() });
        const saved = ps.map((p) => p.detach().clone());
        opt.dispose();

        // Fresh parameters and optimizer, restored, then the second half.
        const qs = saved.map((p) => p.clone().requiresGrad_(true));
        const opt2 = make(qs);
        const loaded = torch.loadSafetensors(file);
        const m = JSON.parse(meta);
        opt2.loadStateDict({ tensors: loaded.tensors, meta: m.opt });
        const sched2 = new optim.StepLR(opt2, 2, 0.5);
        sched2.loadStateDict(m.sched);
        assert.equal(sched2.stepCount, sched.stepCount);
        for (let k = half; k < STEPS; k++) {
          qs[0]!.grad = g0.select(0, k).clone();
          qs[1]!.grad = g1.select(0, k).clone();
          opt2.step();
        }
        opt2.dispose();
        qs.forEach((q, i) => assert.ok(q.detach().equal(straight[i]!), `param ${i} differs after resuming`));
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('optim: parameters without a gradient are left alone; zeroGrad clears gradients', () => {
  torch.tidy(() => {
    const a = torch.ones([2]).requiresGrad_(true);
    const b = torch.ones([2]).requiresGrad_(true);
    const opt = new optim.Adam([a, b], { lr: 0.1 });
    a.grad = torch.ones([2]);
    opt.step();
    assert.ok(b.detach().equal(torch.ones([2])));
    assert.ok(!a.detach().equal(torch.ones([2])));
    opt.zeroGrad();
    assert.equal(a.grad, null);
    opt.dispose();
  });
});

test('optim: invalid hyperparameters are refused', () => {
  assert.throws(() => new optim.SGD([torch.zeros([1])], { lr: -1 }), RangeError);
  assert.throws(() => new optim.SGD([torch.zeros([1])], { lr: 0.1, nesterov: true }), /Nesterov/);
});
