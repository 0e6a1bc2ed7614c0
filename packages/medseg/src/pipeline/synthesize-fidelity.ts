/**
 * How close synthetic pairs are to real ones, three ways:
 * - a real-vs-synthetic classifier: a small CNN trained briefly on image
 *   patches of both, its ROC AUC on patches of held-out cases (0.5: it cannot
 *   tell them apart; 1: it always can);
 * - the intensity-histogram distance: Wasserstein-1 between the voxel
 *   intensities of all real and all synthetic images, per channel, in the
 *   plan's normalised units;
 * - utility: Dice on the real cases of a segmentation network (the plan's)
 *   trained briefly on the synthetic pairs only.
 * The bench calls measureFidelity with larger budgets than synthesize does.
 */
import * as torch from '@medseg/torch';
import { makeBatch } from '../data/batch.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import { conv } from '../models/blocks-conv.ts';
import { createNetwork } from '../models/registry.ts';
import type { Plan } from '../plan/types.ts';
import { makeOptimizer, trainingStep } from '../train/step.ts';
import { trainerConfig } from '../train/trainer-config.ts';
import { mixSeed } from '../util/random.ts';

const { nn, F, optim } = torch;

export interface FidelityOptions {
  /** Classifier training steps (default 60; a batch holds 4 real and 4 synthetic patches). */
  classifierSteps?: number;
  /** Steps of the synthetic-only segmentation network (default 100). */
  segmentationSteps?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface FidelityReport {
  classifierAuc: number;
  /** Patches the AUC was measured on (each kind), and whether they came from cases the classifier did not see. */
  classifierTestPatches: number;
  heldOutCases: boolean;
  /** Per channel, in normalised intensity units. */
  wasserstein1: number[];
  syntheticOnlyDice: { perClass: number[]; mean: number; realCases: number; steps: number };
  seconds: number;
}

/** Exact Wasserstein-1 distance between two empirical distributions (as scipy.stats.wasserstein_distance). */
export function wasserstein1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  if (x.length === 0 || y.length === 0) return NaN;
  let i = 0,
    j = 0,
    total = 0;
  let prev = Math.min(x[0]!, y[0]!);
  while (i < x.length || j < y.length) {
    const next = j >= y.length || (i < x.length && x[i]! <= y[j]!) ? x[i]! : y[j]!;
    total += Math.abs(i / x.length - j / y.length) * (next - prev);
    prev = next;
    while (i < x.length && x[i] === next) i++;
    while (j < y.length && y[j] === next) j++;
  }
  return total;
}

/** ROC AUC of scores (positives = synthetic) by the Mann-Whitney statistic, ties counting half. */
export function rocAuc(negatives: number[], positives: number[]): number {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

class PatchClassifier extends nn.Module {
  c1: torch.nn.UnaryModule;
  c2: torch.nn.UnaryModule;
  c3: torch.nn.UnaryModule;
  fc: torch.nn.Linear;
  constructor(dims: 2 | 3, channels: number) {
    super();
    this.c1 = this.module('c1', conv(dims, channels, 8, 3, { stride: 2, padding: 1 }));
    this.c2 = this.module('c2', conv(dims, 8, 16, 3, { stride: 2, padding: 1 }));
    this.c3 = this.module('c3', conv(dims, 16, 32, 3, { stride: 2, padding: 1 }));
    this.fc = this.module('fc', new nn.Linear(32, 1));
  }
  forward(x: torch.Tensor): torch.Tensor {
    const h = F.leakyRelu(this.c3.forward(F.leakyRelu(this.c2.forward(F.leakyRelu(this.c1.forward(x), 0.2)), 0.2)), 0.2);
    return this.fc.forward(h.flatten(2).mean(2)).squeeze(1);
  }
}

function classifierAuc(
  real: PreprocessedCase[],
  synthetic: PreprocessedCase[],
  plan: Plan,
  steps: number,
  seed: number,
): { auc: number; patches: number; heldOut: boolean } {
  const heldOut = real.length >= 2 && synthetic.length >= 2;
  const half = (a: PreprocessedCase[]) => (heldOut ? [a.slice(0, Math.ceil(a.length / 2)), a.slice(Math.ceil(a.length / 2))] : [a, a]);
  const [realTrain, realTest] = half(real);
  const [synTrain, synTest] = half(synthetic);
  const bp = { patchSize: plan.patchSize, batchSize: 4, augmentation: plan.augmentation, oversampleForeground: 0.33 };
  const net = new PatchClassifier(plan.patchSize.length as 2 | 3, real[0]!.channels);
  const opt = new optim.Adam(net.parameters(), { lr: 1e-3 });
  try {
    for (let s = 0; s < steps; s++) {
      torch.tidy(() => {
        const r = makeBatch(realTrain!, bp, mixSeed(seed, 1, s), false);
        const f = makeBatch(synTrain!, bp, mixSeed(seed, 2, s), false);
        const x = torch.cat([torch.tensor(r.image, r.shape), torch.tensor(f.image, f.shape)], 0);
        const y = torch.cat([torch.zeros([r.shape[0]!]), torch.ones([f.shape[0]!])]);
        const loss = F.bceWithLogits(net.forward(x), y);
        opt.zeroGrad();
        loss.backward();
        opt.step();
      });
    }
    const score = (cases: PreprocessedCase[], k: number) =>
      torch.tidy(() =>
        torch.noGrad(() => {
          const out: number[] = [];
          for (let t = 0; t < 8; t++) {
            const b = makeBatch(cases, bp, mixSeed(seed, 3 + k, t), false);
            out.push(...(net.forward(torch.tensor(b.image, b.shape)).toArray() as number[]));
          }
          return out;
        }),
      );
    const neg = score(realTest!, 0);
    const pos = score(synTest!, 1);
    return { auc: rocAuc(neg, pos), patches: pos.length, heldOut };
  } finally {
    opt.dispose();
    net.dispose();
  }
}

async function syntheticOnlyDice(
  real: PreprocessedCase[],
  synthetic: PreprocessedCase[],
  plan: Plan,
  steps: number,
  seed: number,
): Promise<FidelityReport['syntheticOnlyDice']> {
  const cfg = trainerConfig(plan);
  torch.manualSeed(seed);
  const net = createNetwork(plan.network);
  const opt = makeOptimizer(net, cfg);
  try {
    net.train();
    for (let s = 0; s < steps; s++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const b = makeBatch(synthetic, plan, mixSeed(seed, 5, s), true);
      torch.tidy(() => {
        trainingStep(net, opt, torch.tensor(b.image, b.shape), torch.tensor(b.label, [b.shape[0]!, ...b.shape.slice(2)]).long(), cfg);
      });
    }
    net.eval();
    const K = plan.network.numClasses;
    const perCase = real.map((c) => diceScores(predictCaseLabels(net, c, plan.patchSize, { mirror: false }), c.label!, K));
    const perClass = Array.from({ length: K - 1 }, (_, k) => {
      const v = perCase.map((d) => d[k]!).filter(Number.isFinite);
      return v.length ? v.reduce((a, x) => a + x, 0) / v.length : NaN;
    });
    const fin = perClass.filter(Number.isFinite);
    return { perClass, mean: fin.length ? fin.reduce((a, x) => a + x, 0) / fin.length : NaN, realCases: real.length, steps };
  } finally {
    opt.dispose();
    net.dispose();
  }
}

/** Classifier AUC, intensity W1 and synthetic-only Dice of `synthetic` against `real` (both preprocessed for `plan`, labelled). */
export async function measureFidelity(real: PreprocessedCase[], synthetic: PreprocessedCase[], plan: Plan, o: FidelityOptions = {}): Promise<FidelityReport> {
  if (real.length === 0 || synthetic.length === 0) throw new RangeError('fidelity needs real and synthetic cases');
  const t0 = Date.now();
  const seed = o.seed ?? 12345;
  const C = real[0]!.channels;
  const channelValues = (cases: PreprocessedCase[], ch: number) => {
    const parts = cases.map((c) => {
      const n = c.shape[0] * c.shape[1] * c.shape[2];
      return c.data.subarray(ch * n, (ch + 1) * n);
    });
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return all;
  };
  const w1 = Array.from({ length: C }, (_, ch) => wasserstein1(channelValues(real, ch), channelValues(synthetic, ch)));
  const cls = classifierAuc(real, synthetic, plan, o.classifierSteps ?? 60, seed);
  o.log?.(`fidelity: classifier AUC ${cls.auc.toFixed(3)} on ${cls.patches} + ${cls.patches} patches${cls.heldOut ? ' of held-out cases' : ''}`);
  const dice = await syntheticOnlyDice(real, synthetic, plan, o.segmentationSteps ?? 100, seed);
  return {
    classifierAuc: cls.auc,
    classifierTestPatches: cls.patches,
    heldOutCases: cls.heldOut,
    wasserstein1: w1,
    syntheticOnlyDice: dice,
    seconds: (Date.now() - t0) / 1000,
  };
}
