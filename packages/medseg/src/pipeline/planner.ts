/**
 * The plan: everything preprocessing, training and inference need, as one
 * human-editable JSON file. Rules after nnU-Net's default planner:
 * - target spacing: the median spacing; if the coarsest axis is > 3x the
 *   finest, that axis takes the 10th percentile of its spacings instead;
 * - patch: the median shape after resampling, each axis rounded up to a
 *   multiple of its total downsampling, capped by a voxel budget;
 * - topology: an axis is pooled (stride 2) at a stage while its feature map
 *   stays >= 8 voxels (min. 4 after pooling) and its spacing is not more than
 *   2x the finest current spacing; at most 5 poolings;
 * - features 32 * 2^stage capped at 320 (3D) / 512 (2D);
 * - normalisation: CT -> clip + global z-score, everything else per-image z-score.
 * What nnU-Net does not do: a CPU time budget. The planner times one training
 * step of candidate widths on this machine and picks the widest network that
 * still gets enough iterations into the budget, then sets epochs to fill it.
 */
import { readFileSync } from 'node:fs';
import * as torch from '@medseg/torch';
import type { NetworkConfig } from '../models/config.ts';
import { createNetwork } from '../models/registry.ts';
import { deepSupervisionLoss } from '../train/losses.ts';
import type { TrainerConfig } from '../train/trainer.ts';
import type { Fingerprint, Normalization, Zyx } from './prepare.ts';
import type { RawDataset } from './raw-dataset.ts';

export interface Augmentation {
  rotation: number;
  scaling: number;
  mirror: number;
  noise: number;
  blur: number;
  brightness: number;
  contrast: number;
  lowResolution: number;
  gamma: number;
}

export interface Plan {
  schema: 'medseg.plan/1';
  dataset: string;
  dims: 2 | 3;
  channels: string[];
  labels: Record<number, string>;
  targetSpacing: Zyx;
  medianShape: Zyx;
  normalization: Normalization[];
  patchSize: number[];
  batchSize: number;
  network: NetworkConfig;
  augmentation: Augmentation;
  /** Fraction of patches centred on foreground (nnU-Net: 0.33). */
  foregroundOversampling: number;
  training: Omit<TrainerConfig, 'patchSize' | 'numClasses'>;
  budget: { minutes: number; cores: number; stepSeconds: number };
  inference: { mirror: boolean; stepFraction: number };
}

export interface PlanOptions {
  /** Training time budget in minutes (default 30). */
  minutes?: number;
  architecture?: string;
  /** Force the width (first stage features) instead of timing candidates. */
  baseFeatures?: number;
  seedIterationsMin?: number;
  optimizer?: 'sgd' | 'adamw';
  loss?: 'dice_ce' | 'dice_focal';
  /** Skip the timing measurement (tests): assume this many seconds per step. */
  assumeStepSeconds?: number;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(a: number[], q: number): number {
  const s = [...a].sort((x, y) => x - y);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo]! + (s[Math.min(s.length - 1, lo + 1)]! - s[lo]!) * (pos - lo);
}

export function targetSpacing(spacings: Zyx[]): Zyx {
  const med = [0, 1, 2].map((i) => median(spacings.map((s) => s[i]!))) as Zyx;
  const worst = med.indexOf(Math.max(...med));
  const others = med.filter((_, i) => i !== worst);
  if (med[worst]! > 3 * Math.min(...others)) med[worst] = quantile(spacings.map((s) => s[worst]!), 0.1);
  return med;
}

/** Per-stage strides and the patch rounded to them (nnU-Net's pooling rule). */
export function poolingTopology(patch: number[], spacing: number[], maxPools = 5): { strides: number[][]; patch: number[]; kernels: number[][] } {
  const n = patch.length;
  const size = [...patch];
  const sp = [...spacing];
  const strides: number[][] = [new Array(n).fill(1)];
  const kernels: number[][] = [];
  for (let s = 0; s < maxPools; s++) {
    const finest = Math.min(...sp);
    const stride = size.map((v, i) => (v / 2 >= 4 && v >= 8 && sp[i]! <= 2 * finest ? 2 : 1));
    if (stride.every((x) => x === 1)) break;
    strides.push(stride);
    stride.forEach((st, i) => {
      size[i] = Math.ceil(size[i]! / st);
      sp[i] = sp[i]! * st;
    });
  }
  // Kernels: 3 on an axis, 1 while that axis is much coarser than the finest (anisotropic data).
  const spk = [...spacing];
  for (let s = 0; s < strides.length; s++) {
    if (s > 0) strides[s]!.forEach((st, i) => (spk[i] = spk[i]! * st));
    const finest = Math.min(...spk);
    kernels.push(spk.map((v) => (v > 2 * finest ? 1 : 3)));
  }
  const total = patch.map((_, i) => strides.reduce((a, st) => a * st[i]!, 1));
  const rounded = patch.map((p, i) => Math.ceil(p / total[i]!) * total[i]!);
  return { strides, patch: rounded, kernels };
}

export function defaultAugmentation(): Augmentation {
  return { rotation: 0.2, scaling: 0.2, mirror: 0.5, noise: 0.1, blur: 0.2, brightness: 0.15, contrast: 0.15, lowResolution: 0.25, gamma: 0.3 };
}

function networkConfig(arch: string, dims: 2 | 3, inC: number, K: number, strides: number[][], kernels: number[][], base: number): NetworkConfig {
  const cap = dims === 3 ? 320 : 512;
  return {
    architecture: arch,
    dims,
    inChannels: inC,
    numClasses: K,
    features: strides.map((_, s) => Math.min(cap, base * 2 ** s)),
    kernelSizes: kernels,
    strides,
    deepSupervision: true,
    norm: 'instance',
  };
}

/** Seconds for one forward+backward+update of this network at this batch and patch, measured here. */
export function measureStepSeconds(net: NetworkConfig, batch: number, patch: number[], reps = 3): number {
  const model = createNetwork(net);
  const opt = new torch.optim.SGD(model.parameters(), { lr: 1e-3, momentum: 0.9, nesterov: true });
  const times: number[] = [];
  try {
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      torch.tidy(() => {
        const x = torch.randn([batch, net.inChannels, ...patch]);
        const y = torch.randint(0, net.numClasses, [batch, ...patch]);
        const loss = deepSupervisionLoss(model.forward(x), y, { name: 'dice_ce' });
        opt.zeroGrad();
        loss.backward();
        opt.step();
      });
      if (r > 0) times.push((performance.now() - t0) / 1000);
    }
  } finally {
    opt.dispose();
    model.dispose();
  }
  return median(times);
}

export function makePlan(ds: RawDataset, fp: Fingerprint, o: PlanOptions = {}): Plan {
  const minutes = o.minutes ?? 30;
  const is2d = fp.shapes.every((s) => s[0] === 1);
  const dims: 2 | 3 = is2d ? 2 : 3;
  const spacing = targetSpacing(fp.spacings);
  const shapes = fp.shapes.map((s, k) => s.map((v, i) => Math.round((v * fp.spacings[k]![i]!) / spacing[i]!)) as Zyx);
  const medianShape = [0, 1, 2].map((i) => median(shapes.map((s) => s[i]!))) as Zyx;
  // Patch: the median shape, capped so one patch stays CPU-sized (3D: 128^3 / 8; 2D: 512^2 / 4).
  let patch = dims === 3 ? [...medianShape] : medianShape.slice(1);
  const cap = dims === 3 ? 96 * 96 * 96 : 512 * 512;
  while (patch.reduce((a, b) => a * b, 1) > cap) {
    const i = patch.indexOf(Math.max(...patch));
    patch[i] = Math.floor(patch[i]! * 0.9);
  }
  const sp = dims === 3 ? [...spacing] : spacing.slice(1);
  const topo = poolingTopology(patch, sp);
  patch = topo.patch;
  const labelIds = Object.keys(ds.labels).length ? Object.keys(ds.labels).map(Number) : Object.keys(fp.classVoxels).map(Number);
  const numClasses = Math.max(...labelIds) + 1;
  const normalization: Normalization[] = ds.channels.map((name, c) =>
    /^ct$/i.test(name) ? { scheme: 'ct', mean: fp.foreground[c]!.mean, std: fp.foreground[c]!.std, lo: fp.foreground[c]!.p005, hi: fp.foreground[c]!.p995 } : { scheme: 'zscore' },
  );
  const batchSize = dims === 3 ? 2 : Math.max(2, Math.min(16, Math.floor((256 * 256 * 12) / patch.reduce((a, b) => a * b, 1))));
  const arch = o.architecture ?? 'unet';
  const budgetSeconds = minutes * 60 * 0.85; // the rest: validation, checkpoints
  const minIterations = o.seedIterationsMin ?? (dims === 3 ? 2500 : 1500);
  let base = o.baseFeatures ?? 16;
  let stepSeconds = o.assumeStepSeconds ?? NaN;
  if (o.baseFeatures === undefined) {
    // Widest candidate that still leaves minIterations in the budget. 3D never
    // starts at 8 channels: libtorch 1.13's oneDNN weight-gradient kernel for
    // 3D convs with 8 input channels was measured 10-20x slower than with 16
    // (1.7 s vs 72 ms for 8->8 vs 16->16 at 2x40x56x40), in PyTorch too.
    for (const candidate of dims === 3 ? [32, 16] : [32, 16, 8]) {
      const s = o.assumeStepSeconds ?? measureStepSeconds(networkConfig(arch, dims, ds.channels.length, numClasses, topo.strides, topo.kernels, candidate), batchSize, patch, 2);
      base = candidate;
      stepSeconds = s;
      if (budgetSeconds / s >= minIterations) break;
    }
  } else if (!Number.isFinite(stepSeconds)) {
    stepSeconds = measureStepSeconds(networkConfig(arch, dims, ds.channels.length, numClasses, topo.strides, topo.kernels, base), batchSize, patch, 2);
  }
  const iterations = Math.max(50, Math.floor(budgetSeconds / stepSeconds));
  const iterationsPerEpoch = Math.min(250, Math.max(25, Math.round(iterations / 40)));
  const epochs = Math.max(1, Math.floor(iterations / iterationsPerEpoch));
  const optimizer = o.optimizer ?? 'sgd';
  return {
    schema: 'medseg.plan/1',
    dataset: ds.name,
    dims,
    channels: ds.channels,
    labels: Object.keys(ds.labels).length ? ds.labels : Object.fromEntries(labelIds.map((l) => [l, l === 0 ? 'background' : `class ${l}`])),
    targetSpacing: spacing,
    medianShape,
    normalization,
    patchSize: patch,
    batchSize,
    network: networkConfig(arch, dims, ds.channels.length, numClasses, topo.strides, topo.kernels, base),
    augmentation: defaultAugmentation(),
    foregroundOversampling: 0.33,
    training: {
      epochs,
      iterationsPerEpoch,
      optimizer,
      lr: optimizer === 'sgd' ? 0.01 : 3e-4,
      weightDecay: optimizer === 'sgd' ? 3e-5 : 0.01,
      momentum: 0.99,
      schedule: optimizer === 'sgd' ? 'poly' : 'cosine',
      warmupEpochs: optimizer === 'sgd' ? 0 : 1,
      loss: { name: o.loss ?? 'dice_ce', batchDice: dims === 3 },
      gradClip: 12,
      checkpointEvery: 1,
      earlyStoppingPatience: 0,
      timeBudgetMinutes: minutes,
    },
    budget: { minutes, cores: torch.getNumThreads(), stepSeconds },
    inference: { mirror: true, stepFraction: 0.5 },
  };
}

/** Reads and checks a plan file, with errors that say which field is wrong. */
export function loadPlan(path: string): Plan {
  let p: Plan;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as Plan;
  } catch (e) {
    throw new Error(`${path}: not a readable plan JSON (${(e as Error).message})`);
  }
  const bad = (field: string, why: string): never => {
    throw new Error(`${path}: plan field '${field}' ${why}`);
  };
  if (p.schema !== 'medseg.plan/1') bad('schema', `must be 'medseg.plan/1', got ${JSON.stringify(p.schema)}`);
  if (p.dims !== 2 && p.dims !== 3) bad('dims', 'must be 2 or 3');
  if (!Array.isArray(p.patchSize) || p.patchSize.length !== p.dims || !p.patchSize.every((v) => Number.isInteger(v) && v > 0)) bad('patchSize', `must be ${p.dims} positive integers`);
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1) bad('batchSize', 'must be a positive integer');
  if (!p.network || p.network.dims !== p.dims) bad('network.dims', 'must equal dims');
  const total = p.patchSize.map((_, i) => p.network.strides.reduce((a, s) => a * s[i]!, 1));
  p.patchSize.forEach((v, i) => v % total[i]! && bad('patchSize', `axis ${i} (${v}) must be divisible by the total stride ${total[i]}`));
  if (!(p.training?.epochs >= 1) || !(p.training?.iterationsPerEpoch >= 1)) bad('training', 'needs epochs >= 1 and iterationsPerEpoch >= 1');
  if (!(p.training.lr > 0)) bad('training.lr', 'must be > 0');
  return p;
}
