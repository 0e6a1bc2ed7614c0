/**
 * makePlan: fingerprint -> plan, after nnU-Net v2's default experiment planner.
 * - target spacing: per-axis median of the case spacings; if the coarsest axis
 *   is > 3x coarser than the others AND has < 1/3 of their voxels, it takes
 *   the 10th percentile of its spacings instead (never below the others);
 * - median shape: median of the cropped shapes resampled to that spacing;
 * - patch: start from a 256^3 (3D) / 2048^2 (2D) volume with the target
 *   spacing's aspect ratio, clip to the median shape, derive the topology
 *   (topology.ts), then while the activation estimate exceeds the reference
 *   budget (a 128^3 patch at batch 2 in 3D, 512^2 at batch 12 in 2D) shrink
 *   the axis largest relative to the median shape;
 * - batch: budget / estimate, at most 5% of the dataset's voxels, at least 2;
 * - features 32 * 2^stage capped at 320 (3D) / 512 (2D);
 * - normalisation: 'CT' -> clip to the foreground [p0.5, p99.5] and z-score
 *   with the foreground mean/std; else per-image z-score, inside the nonzero
 *   mask when cropping to nonzero shrank the median case by >= 25%;
 * - augmentation probabilities: nnU-Net's defaults, plus (2D, square pixels)
 *   exact transposition of the plane with probability 0.5;
 * Beyond nnU-Net: a CPU time budget. A measured throughput model (a conv
 * stack timed with @medseg/torch) predicts the step time of candidate
 * widths / patches / batches; the planner keeps the best candidate that
 * reaches the target number of iterations in the time given. With a step
 * timer it then times a real training step of that candidate, rescales the
 * model by measured / predicted and chooses again (at most three rounds).
 */
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { MedsegIoError } from '../io/errors.ts';
import type { NetworkConfig } from '../models/config.ts';
import type { Fingerprint } from './fingerprint.ts';
import { median, percentileSorted } from '../util/quantile.ts';
import { activationElements, poolAndConvProps, unetMacs } from './topology.ts';

export type Zyx = [number, number, number];

export type NormScheme = 'ct' | 'zscore' | 'rescale01' | 'rgb01' | 'none';

export interface ChannelNormalization {
  channel: string;
  scheme: NormScheme;
  /** z-score inside the nonzero mask only (outside set to 0). */
  useMaskForNorm: boolean;
  /** CT: foreground percentiles 0.5 / 99.5 and mean / std. */
  clip?: [number, number];
  mean?: number;
  std?: number;
}

export interface AugmentationParams {
  rotation: { p: number; maxDegrees: number[] };
  scaling: { p: number; range: [number, number] };
  elastic: { p: number; alpha: [number, number]; sigma: [number, number] };
  mirror: { p: number; axes: number[] };
  noise: { p: number; variance: [number, number] };
  blur: { p: number; sigma: [number, number] };
  brightness: { p: number; range: [number, number] };
  contrast: { p: number; range: [number, number] };
  lowResolution: { p: number; zoom: [number, number]; ignoreAxes: number[] };
  gamma: { p: number; range: [number, number]; pInvert: number };
  /** Anisotropic patch: spatial transforms in-plane only (nnU-Net's dummy 2D). */
  dummy2d: boolean;
  /**
   * 2D: swap the plane's two axes (exact, no interpolation). With mirroring
   * the patch takes any of the 8 orientations of the square, as EM and
   * microscopy pipelines augment; needs square pixels. Absent (plans made
   * before it): off.
   */
  transpose?: { p: number };
}

export interface BudgetInfo {
  minutes: number;
  cores: number;
  memoryGiB: number;
  /** Predicted (or measured) seconds per training step. */
  stepSeconds: number;
  /** Throughput model: seconds = overhead + 3 * forwardMACs / macsPerSecond. */
  macsPerSecond: number;
  overheadSeconds: number;
  baseFeatures: number;
  targetIterations: number;
  note: string;
  /** Real training steps timed while choosing (stepTimer): the MAC model was scaled by measured / predicted. */
  calibration?: { patchSize: number[]; batchSize: number; baseFeatures: number; predictedSeconds: number; measuredSeconds: number }[];
}

export interface Plan {
  schema: 'medseg.plan/1';
  dataset: string;
  dims: '2d' | '3d_fullres';
  channels: string[];
  labels: Record<number, string>;
  /** [z, y, x] mm; in 2D plans z is kept as is (no resampling across slices). */
  targetSpacing: Zyx;
  /** Median case shape after resampling, [z, y, x]. */
  medianShape: Zyx;
  /** [z, y, x] (3D) or [y, x] (2D). */
  patchSize: number[];
  batchSize: number;
  network: NetworkConfig;
  normalization: ChannelNormalization[];
  resampling: { image: 'bspline3' | 'linear'; label: 'onehot-linear'; separateZ: boolean; anisotropyThreshold: number };
  augmentation: AugmentationParams;
  /** Fraction of patches centred on foreground (nnU-Net: 0.33). */
  oversampleForeground: number;
  iterationsPerEpoch: number;
  epochs: number;
  budget: BudgetInfo | null;
  /** The untouched nnU-Net choice when the budget scaled the plan down. */
  reference: { patchSize: number[]; batchSize: number; features: number[] };
  /** Optimiser, schedule and loss (written by training; defaults: nnU-Net's SGD). */
  training?: TrainingSettings;
  /** Sliding-window settings for validation and prediction. */
  inference?: InferenceSettings;
}

/** What the trainer takes from the plan; editable like everything else in it. */
export interface TrainingSettings {
  optimizer: 'sgd' | 'adamw';
  lr: number;
  weightDecay: number;
  momentum?: number;
  schedule: 'poly' | 'cosine' | 'constant';
  warmupEpochs?: number;
  loss: { name: 'dice_ce' | 'dice_focal' | 'ce' | 'dice'; batchDice?: boolean; includeBackground?: boolean };
  gradClip: number;
  checkpointEvery: number;
  earlyStoppingPatience: number;
  timeBudgetMinutes: number;
}

export interface ThroughputModel {
  macsPerSecond: number;
  overheadSeconds: number;
}

export interface PlanOptions {
  dims?: '2d' | '3d_fullres';
  architecture?: string;
  /** CPU budget; without it the plan keeps nnU-Net's sizes and 1000 x 250 iterations. */
  budget?: { minutes: number; cores?: number; memoryGiB?: number; targetIterations?: number };
  /** Throughput model to use instead of measuring (tests, or a caller that timed the real model). */
  throughput?: ThroughputModel;
  /**
   * Times one real training step of a candidate (pipeline/step-timer.ts). When
   * given, the planner scales its MAC model by measured / predicted for the
   * chosen candidate and chooses again, up to three rounds: the MAC model
   * misses norm, activation, loss and optimizer costs, which dominate at the
   * narrow widths a CPU budget leads to. Kept as a callback so the planner
   * does not depend on the model zoo.
   */
  stepTimer?: (network: NetworkConfig, patchSize: number[], batchSize: number) => Promise<number> | number;
}

const ANISO = 3;

function percentile(values: number[], q: number): number {
  return percentileSorted([...values].sort((a, b) => a - b), q);
}

/** nnU-Net's fullres target spacing with the anisotropy rule, [z, y, x]. */
export function targetSpacingOf(fp: Pick<Fingerprint, 'cases'>): Zyx {
  const sp = fp.cases.map((c) => c.spacing);
  const target = [0, 1, 2].map((a) => median(sp.map((s) => s[a]!))) as Zyx;
  const shapes = fp.cases.map((c) => c.croppedShape);
  const size = [0, 1, 2].map((a) => median(shapes.map((s) => s[a]!)));
  const worst = target.indexOf(Math.max(...target));
  const others = [0, 1, 2].filter((a) => a !== worst);
  const maxOther = Math.max(...others.map((a) => target[a]!));
  const anisoSpacing = target[worst]! > ANISO * maxOther;
  const anisoVoxels = size[worst]! * ANISO < Math.min(...others.map((a) => size[a]!));
  if (anisoSpacing && anisoVoxels) {
    let t = percentile(sp.map((s) => s[worst]!), 10);
    if (t < maxOther) t = Math.max(maxOther, t) + 1e-5;
    target[worst] = t;
  }
  return target;
}

export function resampledShape(shape: Zyx, spacing: Zyx, target: Zyx): Zyx {
  return shape.map((s, i) => Math.max(1, Math.round((s * spacing[i]!) / target[i]!))) as Zyx;
}

function normalizationFor(fp: Fingerprint): ChannelNormalization[] {
  const useMask = fp.medianRelativeSizeAfterCropping < 0.75;
  return fp.channels.map((name, c) => {
    const n = name.toLowerCase();
    const scheme: NormScheme = n === 'ct' ? 'ct' : n === 'nonorm' ? 'none' : n === 'rescale_to_0_1' ? 'rescale01' : n === 'rgb_to_0_1' ? 'rgb01' : 'zscore';
    const out: ChannelNormalization = { channel: name, scheme, useMaskForNorm: scheme === 'zscore' && useMask };
    if (scheme === 'ct') {
      const s = fp.intensity[c]!;
      if (!Number.isFinite(s.mean)) throw new MedsegIoError('BAD_DATA', `channel ${c} (CT) has no foreground intensity statistics: are the labels empty?`);
      out.clip = [s.percentile_00_5, s.percentile_99_5];
      out.mean = s.mean;
      out.std = s.std;
    }
    return out;
  });
}

/** Whether a [z, y, x] spacing has equal y and x (to 0.1%): the plane can be transposed. */
export function hasSquarePixels(spacing: Zyx): boolean {
  return Math.abs(spacing[1] - spacing[2]) <= 1e-3 * Math.max(spacing[1], spacing[2]);
}

export function defaultAugmentation(dims: 2 | 3, patchSize: number[], squarePixels = false): AugmentationParams {
  // nnU-Net: anisotropic 3D patches (max / z > 3) get in-plane ("dummy 2D") spatial augmentation.
  const dummy2d = dims === 3 && Math.max(...patchSize) / patchSize[0]! > ANISO;
  const inPlane = dims === 2 || dummy2d;
  return {
    rotation: { p: 0.2, maxDegrees: inPlane ? (dims === 3 ? [180, 0, 0] : [180]) : [30, 30, 30] },
    scaling: { p: 0.2, range: [0.7, 1.4] },
    elastic: { p: 0, alpha: [0, 200], sigma: [9, 13] },
    mirror: { p: 0.5, axes: dims === 3 ? [0, 1, 2] : [0, 1] },
    noise: { p: 0.1, variance: [0, 0.1] },
    blur: { p: 0.2, sigma: [0.5, 1] },
    brightness: { p: 0.15, range: [0.75, 1.25] },
    contrast: { p: 0.15, range: [0.75, 1.25] },
    lowResolution: { p: 0.25, zoom: [0.5, 1], ignoreAxes: dummy2d ? [0] : [] },
    gamma: { p: 0.3, range: [0.7, 1.5], pInvert: 0.1 },
    dummy2d,
    transpose: { p: dims === 2 && squarePixels ? 0.5 : 0 },
  };
}

interface Config {
  patchSize: number[];
  strides: number[][];
  kernelSizes: number[][];
  features: number[];
  batchSize: number;
}

function networkConfig(c: Config, architecture: string | undefined, dims: 2 | 3, inChannels: number, numClasses: number): NetworkConfig {
  return {
    architecture: architecture ?? 'unet',
    dims,
    inChannels,
    numClasses,
    features: c.features,
    kernelSizes: c.kernelSizes,
    strides: c.strides,
    deepSupervision: true,
    norm: 'instance',
    upsample: 'transpose',
  };
}

function featuresFor(stages: number, base: number, dims: 2 | 3): number[] {
  const cap = (dims === 3 ? 320 : 512) * (base / 32);
  return Array.from({ length: stages }, (_, s) => Math.min(cap, base * 2 ** s));
}

/** The nnU-Net patch / topology / batch choice for a spacing and median shape. */
function nnunetConfig(spacing: number[], medianShape: number[], inChannels: number, nVoxelsDataset: number, dims: 2 | 3, base = 32): Config {
  const inv = spacing.map((s) => 1 / s);
  const prod = inv.reduce((a, b) => a * b, 1);
  const vol = dims === 3 ? 256 ** 3 : 2048 ** 2;
  let patch = inv.map((v, i) => Math.min(Math.round(v * (vol / prod) ** (1 / dims)), medianShape[i]!));
  let topo = poolAndConvProps(spacing, patch);
  patch = topo.patchSize;
  const refPatch = dims === 3 ? [128, 128, 128] : [512, 512];
  const refBatch = dims === 3 ? 2 : 12;
  const refTopo = poolAndConvProps([1, 1, 1].slice(0, dims), refPatch);
  const budget = activationElements(refPatch, refTopo.strides, featuresFor(refTopo.strides.length, 32, dims), 1) * refBatch;
  const est = (p: number[], t: typeof topo) => activationElements(p, t.strides, featuresFor(t.strides.length, base, dims), inChannels);
  let e = est(patch, topo);
  while (e * 2 > budget) {
    const ratios = patch.map((p, i) => p / medianShape[i]!);
    let axis = 0;
    ratios.forEach((r, i) => {
      if (r >= ratios[axis]!) axis = i; // ties: the last axis, as numpy's argsort()[-1]
    });
    const tmp = [...patch];
    tmp[axis]! -= topo.mustBeDivisibleBy[axis]!;
    const by = poolAndConvProps(spacing, tmp).mustBeDivisibleBy;
    patch[axis]! -= by[axis]!;
    topo = poolAndConvProps(spacing, patch);
    patch = topo.patchSize;
    e = est(patch, topo);
  }
  const vox = patch.reduce((a, b) => a * b, 1);
  const bs = Math.max(Math.min(Math.round(budget / e), Math.round((0.05 * nVoxelsDataset) / vox)), 2);
  return { patchSize: patch, strides: topo.strides, kernelSizes: topo.kernelSizes, features: featuresFor(topo.strides.length, base, dims), batchSize: bs };
}

/**
 * Times forward + backward of a small conv stack at two sizes and fits
 * seconds = overhead + 3 * MACs / rate (backward ~ 2x forward).
 */
export async function measureThroughput(dims: 2 | 3, cores = cpus().length): Promise<ThroughputModel> {
  const torch = await import('@medseg/torch');
  const before = torch.getNumThreads();
  torch.setNumThreads(Math.max(1, cores));
  try {
    const sizes = dims === 3 ? [16, 32] : [64, 160];
    const ch = 16;
    const k = dims === 3 ? 27 : 9;
    const w1 = torch.keep(torch.randn(dims === 3 ? [ch, ch, 3, 3, 3] : [ch, ch, 3, 3], { requiresGrad: true }));
    const w2 = torch.keep(torch.randn(dims === 3 ? [ch, ch, 3, 3, 3] : [ch, ch, 3, 3], { requiresGrad: true }));
    const pts: [number, number][] = [];
    try {
      for (const s of sizes) {
        const shape = [2, ch, ...new Array(dims).fill(s)];
        const step = () =>
          torch.tidy(() => {
            const x = torch.randn(shape);
            const y = torch.F.conv(torch.F.conv(x, w1, null, { padding: 1 }).relu(), w2, null, { padding: 1 });
            y.sum().backward();
            return undefined;
          });
        step(); // warm-up
        const reps = 2;
        const t0 = performance.now();
        for (let r = 0; r < reps; r++) step();
        const secs = (performance.now() - t0) / 1000 / reps;
        pts.push([3 * 2 * 2 * ch * ch * k * s ** dims, secs]);
      }
    } finally {
      w1.dispose();
      w2.dispose();
    }
    const [[m1, t1], [m2, t2]] = pts as [[number, number], [number, number]];
    const rate = Math.max((m2 - m1) / Math.max(t2 - t1, 1e-6), m2 / t2);
    const overhead = Math.max(0, t1 - m1 / rate);
    return { macsPerSecond: rate, overheadSeconds: overhead };
  } finally {
    torch.setNumThreads(before);
  }
}

export async function makePlan(fp: Fingerprint, o: PlanOptions = {}): Promise<Plan> {
  if (fp.cases.length === 0) throw new MedsegIoError('BAD_DATA', 'the fingerprint lists no cases');
  const planDims = o.dims ?? (fp.dims === 2 ? '2d' : '3d_fullres');
  const d: 2 | 3 = planDims === '2d' ? 2 : 3;
  if (d === 3 && fp.dims === 2) throw new MedsegIoError('BAD_DATA', 'a 3d_fullres plan needs 3D data; this dataset is 2D');
  const target = targetSpacingOf(fp);
  if (d === 2) target[0] = median(fp.cases.map((c) => c.spacing[0])); // 2D: slices stay as they are
  const shapes = fp.cases.map((c) => resampledShape(c.croppedShape, c.spacing, target));
  const medianShape = [0, 1, 2].map((a) => median(shapes.map((s) => s[a]!))) as Zyx;
  const axes = d === 3 ? [0, 1, 2] : [1, 2];
  const spacing = axes.map((a) => target[a]!);
  const medShape = axes.map((a) => Math.round(medianShape[a]!));
  // nnU-Net's approximate_n_voxels_dataset: median volume x cases (also for 2D plans).
  const nVox = medianShape.reduce((a, b) => a * b, 1) * fp.cases.length;
  const C = fp.channels.length;
  const K = Object.keys(fp.labels).length;
  const ref = nnunetConfig(spacing, medShape, C, nVox, d);
  let chosen: Config = ref;
  let iterationsPerEpoch = 250;
  let epochs = 1000;
  let budget: BudgetInfo | null = null;
  if (o.budget) {
    const cores = o.budget.cores ?? cpus().length;
    const memoryGiB = o.budget.memoryGiB ?? Math.floor(totalmem() / 1024 ** 3 / 2);
    const tp = o.throughput ?? (await measureThroughput(d, cores));
    const targetIterations = o.budget.targetIterations ?? 2000;
    const seconds = o.budget.minutes * 60 * 0.85; // the rest: preprocessing, validation, checkpoints
    const stepOf = (c: Config) => tp.overheadSeconds + (3 * c.batchSize * unetMacs(c.patchSize, c.strides, c.kernelSizes, c.features, C, K)) / tp.macsPerSecond;
    const bytesOf = (c: Config) => activationElements(c.patchSize, c.strides, c.features, C) * c.batchSize * 4 * 3;
    // Candidates: narrower networks, smaller patches (the nnU-Net shrinking rule again), smaller batches.
    const cands: { c: Config; q: number }[] = [];
    const vox0 = ref.patchSize.reduce((a, b) => a * b, 1);
    // 3D never starts at 8 channels: libtorch 1.13's oneDNN weight-gradient
    // kernel for 3D convs with 8 input channels was measured 10-20x slower than
    // with 16 (1.7 s vs 72 ms, 8->8 vs 16->16 at 2x40x56x40; PyTorch alike),
    // which a MAC-based throughput model cannot see.
    for (const base of d === 3 ? [32, 24, 16] : [32, 24, 16, 12, 8]) {
      let patch = [...ref.patchSize];
      for (let level = 0; level < 6; level++) {
        const topo = poolAndConvProps(spacing, patch);
        const features = featuresFor(topo.strides.length, base, d);
        for (const bs of [...new Set([ref.batchSize, Math.min(ref.batchSize, 4), 2])]) {
          const c: Config = { patchSize: topo.patchSize, strides: topo.strides, kernelSizes: topo.kernelSizes, features, batchSize: bs };
          const vox = c.patchSize.reduce((a, b) => a * b, 1);
          // Preference: patch context first, then width, then batch.
          cands.push({ c, q: Math.log2(vox / vox0) + 0.6 * Math.log2(base / 32) + 0.3 * Math.log2(bs / ref.batchSize) });
        }
        // Shrink the axis largest relative to the median shape, keeping >= 2 poolings' worth.
        const ratios = patch.map((p, i) => p / medShape[i]!);
        const axis = ratios.indexOf(Math.max(...ratios));
        const next = Math.floor((patch[axis]! * 0.75) / topo.mustBeDivisibleBy[axis]!) * topo.mustBeDivisibleBy[axis]!;
        if (next < 16) break;
        patch = [...patch];
        patch[axis] = next;
      }
    }
    const fits = cands.filter(({ c }) => bytesOf(c) <= memoryGiB * 1024 ** 3 * 0.5);
    if (fits.length === 0) throw new MedsegIoError('BAD_DATA', `no configuration fits in ${memoryGiB} GiB`);
    // scale: measured / MAC-model step time from the step timer (1 without
    // one). After the first timing it only grows, and a timed candidate is
    // judged by its own time, so the rounds cannot oscillate between a
    // candidate known to be too slow and a cheaper one.
    let scale = 1;
    const timedSteps = new Map<Config, number>();
    const predicted = (c: Config) => timedSteps.get(c) ?? scale * stepOf(c);
    const choose = (): { c: Config; note: string } => {
      const ok = fits.filter(({ c }) => seconds / predicted(c) >= targetIterations).sort((a, b) => b.q - a.q);
      if (ok.length > 0) return { c: ok[0]!.c, note: `best candidate reaching ${targetIterations} iterations` };
      const fastest = [...fits].sort((a, b) => predicted(a.c) - predicted(b.c))[0]!.c;
      return { c: fastest, note: `no candidate reaches ${targetIterations} iterations in ${o.budget!.minutes} min: using the fastest` };
    };
    let pick = choose();
    const calibration: NonNullable<BudgetInfo['calibration']> = [];
    for (let round = 0; o.stepTimer && round < 3 && !timedSteps.has(pick.c); round++) {
      const c = pick.c;
      const timed = await o.stepTimer(networkConfig(c, o.architecture, d, C, K), c.patchSize, c.batchSize);
      calibration.push({ patchSize: c.patchSize, batchSize: c.batchSize, baseFeatures: c.features[0]!, predictedSeconds: predicted(c), measuredSeconds: timed });
      timedSteps.set(c, timed);
      scale = round === 0 ? timed / stepOf(c) : Math.max(scale, timed / stepOf(c));
      pick = choose();
    }
    chosen = pick.c;
    const step = predicted(chosen);
    const total = Math.max(1, Math.floor(seconds / step));
    iterationsPerEpoch = total >= 2500 ? 250 : Math.max(1, Math.min(total, Math.max(25, Math.round(total / 10))));
    epochs = Math.max(1, Math.floor(total / iterationsPerEpoch));
    budget = {
      minutes: o.budget.minutes,
      cores,
      memoryGiB,
      stepSeconds: step,
      macsPerSecond: tp.macsPerSecond / scale,
      overheadSeconds: tp.overheadSeconds * scale,
      baseFeatures: chosen.features[0]!,
      targetIterations,
      note: pick.note,
      ...(calibration.length > 0 ? { calibration } : {}),
    };
  }
  const network = networkConfig(chosen, o.architecture, d, C, K);
  const separateZ = d === 3 && Math.max(...target) / Math.min(...target) > ANISO;
  return {
    schema: 'medseg.plan/1',
    dataset: fp.name,
    dims: planDims,
    channels: fp.channels,
    labels: fp.labels,
    targetSpacing: target,
    medianShape,
    patchSize: chosen.patchSize,
    batchSize: chosen.batchSize,
    network,
    normalization: normalizationFor(fp),
    resampling: { image: 'bspline3', label: 'onehot-linear', separateZ, anisotropyThreshold: ANISO },
    augmentation: defaultAugmentation(d, chosen.patchSize, hasSquarePixels(target)),
    oversampleForeground: 0.33,
    iterationsPerEpoch,
    epochs,
    budget,
    reference: { patchSize: ref.patchSize, batchSize: ref.batchSize, features: ref.features },
  };
}

function fail(path: string | undefined, msg: string): never {
  throw new MedsegIoError('BAD_DATA', `invalid plan: ${msg}`, path);
}

/** Test-time settings of the sliding window (see infer/sliding-window.ts). */
export interface InferenceSettings {
  /** Mirroring TTA over every spatial axis (nnU-Net's default). */
  mirror: boolean;
  stepFraction: number;
  /** 2D only: also transpose the plane, for all 8 symmetries of the square (off when absent). */
  transpose?: boolean;
}

/** Checks a (possibly hand-edited) plan; throws a MedsegIoError naming the field. */
export function validatePlan(p: unknown, path?: string): Plan {
  if (!p || typeof p !== 'object') fail(path, 'not a JSON object');
  const plan = p as Plan;
  if (plan.schema !== 'medseg.plan/1') fail(path, `schema must be "medseg.plan/1", got ${JSON.stringify(plan.schema)}`);
  if (plan.dims !== '2d' && plan.dims !== '3d_fullres') fail(path, `dims must be "2d" or "3d_fullres", got ${JSON.stringify(plan.dims)}`);
  const d = plan.dims === '2d' ? 2 : 3;
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!Array.isArray(plan.channels) || plan.channels.length === 0) fail(path, 'channels must be a non-empty list of names');
  if (!plan.labels || typeof plan.labels !== 'object' || !(0 in plan.labels)) fail(path, 'labels must map class ids (with 0) to names');
  if (!Array.isArray(plan.targetSpacing) || plan.targetSpacing.length !== 3 || !plan.targetSpacing.every((s) => typeof s === 'number' && s > 0)) {
    fail(path, 'targetSpacing must be three positive numbers [z, y, x]');
  }
  if (!Array.isArray(plan.patchSize) || plan.patchSize.length !== d || !plan.patchSize.every(posInt)) fail(path, `patchSize must be ${d} positive integers`);
  if (!posInt(plan.batchSize)) fail(path, 'batchSize must be a positive integer');
  if (!posInt(plan.iterationsPerEpoch) || !posInt(plan.epochs)) fail(path, 'iterationsPerEpoch and epochs must be positive integers');
  const n = plan.network;
  if (!n || typeof n !== 'object') fail(path, 'network is missing');
  if (n.dims !== d) fail(path, `network.dims (${n.dims}) does not match dims ${plan.dims}`);
  if (n.inChannels !== plan.channels.length) fail(path, `network.inChannels (${n.inChannels}) must equal the number of channels (${plan.channels.length})`);
  if (n.numClasses !== Object.keys(plan.labels).length) fail(path, `network.numClasses (${n.numClasses}) must equal the number of labels (${Object.keys(plan.labels).length})`);
  const S = n.features?.length;
  if (!S || !n.features.every(posInt)) fail(path, 'network.features must be positive integers');
  for (const key of ['strides', 'kernelSizes'] as const) {
    const a = n[key];
    if (!Array.isArray(a) || a.length !== S) fail(path, `network.${key} must list ${S} entries (one per stage, like features)`);
    a.forEach((e, s) => {
      if (!Array.isArray(e) || e.length !== d || !e.every(posInt)) fail(path, `network.${key}[${s}] must be ${d} positive integers`);
    });
  }
  for (let a = 0; a < d; a++) {
    const by = n.strides.reduce((m, st) => m * st[a]!, 1);
    if (plan.patchSize[a]! % by !== 0) fail(path, `patchSize[${a}] = ${plan.patchSize[a]} is not divisible by ${by} (the product of the strides on that axis)`);
  }
  if (!Array.isArray(plan.normalization) || plan.normalization.length !== plan.channels.length) fail(path, 'normalization must have one entry per channel');
  plan.normalization.forEach((nm, c) => {
    if (!['ct', 'zscore', 'rescale01', 'rgb01', 'none'].includes(nm.scheme)) fail(path, `normalization[${c}].scheme "${nm.scheme}" is not one of ct, zscore, rescale01, rgb01, none`);
    if (nm.scheme === 'ct' && !(Array.isArray(nm.clip) && Number.isFinite(nm.mean) && Number.isFinite(nm.std))) fail(path, `normalization[${c}]: CT needs clip [lo, hi], mean and std`);
  });
  const aug = plan.augmentation as unknown as Record<string, { p?: number }>;
  if (!aug || typeof aug !== 'object') fail(path, 'augmentation is missing');
  for (const [k, v] of Object.entries(aug)) {
    if (v && typeof v === 'object' && 'p' in v && !(typeof v.p === 'number' && v.p >= 0 && v.p <= 1)) fail(path, `augmentation.${k}.p must be a probability in [0, 1]`);
  }
  if (!(plan.oversampleForeground >= 0 && plan.oversampleForeground <= 1)) fail(path, 'oversampleForeground must be in [0, 1]');
  const inf = plan.inference;
  if (inf !== undefined) {
    if (!inf || typeof inf !== 'object' || typeof inf.mirror !== 'boolean') fail(path, 'inference.mirror must be true or false');
    if (!(typeof inf.stepFraction === 'number' && inf.stepFraction > 0 && inf.stepFraction <= 1)) fail(path, 'inference.stepFraction must be in (0, 1]');
    if (inf.transpose !== undefined && typeof inf.transpose !== 'boolean') fail(path, 'inference.transpose must be true or false');
    if (inf.transpose && d !== 2) fail(path, 'inference.transpose applies to 2d plans only');
  }
  return plan;
}

export function loadPlan(path: string): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MedsegIoError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'CORRUPT', `cannot read the plan (${(e as Error).message})`, path);
  }
  return validatePlan(raw, path);
}

export async function savePlan(path: string, plan: Plan): Promise<void> {
  validatePlan(plan, path);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(plan, null, 2) + '\n');
  await rename(tmp, path);
}
