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
import { cpus, totalmem } from 'node:os';
import { MedsegIoError } from '../io/errors.ts';
import { ANISOTROPY_THRESHOLD as ANISO, completePlan, defaultAugmentation, defaultTraining, hasSquarePixels } from '../plan/complete.ts';
import type {
  BudgetInfo,
  ChannelNormalization,
  NetworkConfig,
  NormScheme,
  Plan,
  StepCalibration,
  TrainingChoices,
  TrainingSettings,
  Zyx,
} from '../plan/types.ts';
import { PLAN_SCHEMA } from '../plan/types.ts';
import type { Fingerprint } from './fingerprint.ts';
import { median, percentileSorted } from '../util/quantile.ts';
import { LOAD_THRESHOLD, timeRobustly } from '../util/robust-timing.ts';
import { activationElements, poolAndConvProps, unetMacs } from './topology.ts';
import { allowedFactors, MIN_THICKNESS_PIXELS, patchCoverage, typicalObject, type ObjectSize } from './object-size.ts';

export interface ThroughputModel {
  macsPerSecond: number;
  overheadSeconds: number;
  /** Whether every timing behind it ran on an otherwise idle machine (absent: not measured here). */
  clean?: boolean;
}

export interface PlanOptions {
  dims?: '2d' | '3d_fullres';
  architecture?: string;
  /** CPU budget; without it the plan keeps nnU-Net's sizes and 1000 x 250 iterations. */
  budget?: { minutes: number; cores?: number; memoryGiB?: number; targetIterations?: number };
  /** Throughput model to use instead of measuring (tests, or a caller that timed the real model). */
  throughput?: ThroughputModel;
  /** Measures the throughput model when `throughput` is absent (default measureThroughput; the pipeline's remembers it per machine). */
  throughputMeter?: (dims: 2 | 3, cores: number) => Promise<ThroughputModel>;
  /** Where the step timer's and the meter's measurements are remembered, for the plan's timing rule (absent: measured on every run). */
  timingMemory?: string;
  /**
   * Times one real training step of a candidate (pipeline/step-timer.ts). When
   * given, the planner scales its MAC model by measured / predicted for the
   * chosen candidate and chooses again, up to three rounds: the MAC model
   * misses norm, activation, loss and optimizer costs, which dominate at the
   * narrow widths a CPU budget leads to. Kept as a callback so the planner
   * does not depend on the model zoo.
   */
  stepTimer?: StepTimer;
  /** Optimizer and loss (defaults: plan/complete.ts); the step timer trains with them. */
  training?: TrainingChoices;
}

/** Seconds of one training step of a candidate, with the training settings the plan will have. */
export type StepTimer = (network: NetworkConfig, patchSize: number[], batchSize: number, training: TrainingSettings) => Promise<number> | number;

/** How much slower than the budget allows a timed step may be before the planner moves off the throughput model's choice. */
export const TIMING_MARGIN = 0.15;

/**
 * The largest share of an epoch's time the trainer's validation may take.
 * After every epoch the trainer predicts each validation case whole with the
 * sliding window (no TTA); with few, small-patch iterations per epoch that
 * costs more than the training itself, so an epoch gets enough iterations to
 * keep validation at or below this share.
 */
export const VALIDATION_SHARE = 0.2;

/**
 * Seconds one validation pass (every validation case of a fold, whole, by
 * the sliding window at half-patch steps, no TTA) is expected to take: the
 * tiles of the median case times a forward pass, a third of a training step
 * per batch element. 2D plans predict every slice of a case.
 */
export function validationSeconds(patchSize: number[], batchSize: number, stepSeconds: number, medianShape: number[], validationCases: number): number {
  const inPlane = medianShape.slice(medianShape.length - patchSize.length);
  const tiles = patchSize.reduce((n, p, i) => n * (inPlane[i]! <= p ? 1 : Math.ceil((inPlane[i]! - p) / (p * 0.5)) + 1), 1);
  const slices = patchSize.length === 2 ? medianShape[0]! : 1;
  return (validationCases * slices * tiles * stepSeconds) / (3 * batchSize);
}

function percentile(values: number[], q: number): number {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    q,
  );
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
    let t = percentile(
      sp.map((s) => s[worst]!),
      10,
    );
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
 * Times forward + backward of a small conv stack at two sizes: the rate
 * (MACs per second, training counted as 3x forward) from the larger, the
 * fixed overhead per step from what the smaller takes beyond it. Each size is
 * the fastest of five repetitions on an otherwise idle machine
 * (util/robust-timing.ts), so another process's burst of load does not
 * shrink the plan.
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
    let clean = true;
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
        const t = await timeRobustly(step, { reps: 5, warmup: 1 });
        clean &&= t.clean;
        pts.push([3 * 2 * 2 * ch * ch * k * s ** dims, t.seconds]);
      }
    } finally {
      w1.dispose();
      w2.dispose();
    }
    const [[m1, t1], [m2, t2]] = pts as [[number, number], [number, number]];
    // The rate comes from the larger size alone, not from the difference of
    // the two times: a difference amplifies noise in either, so one slightly
    // slow small-size repetition could double the rate and the patch.
    const rate = m2 / t2;
    const overhead = Math.max(0, t1 - m1 / rate);
    return { macsPerSecond: rate, overheadSeconds: overhead, clean };
  } finally {
    torch.setNumThreads(before);
  }
}

/** A completed plan for a dataset's fingerprint. */
export async function makePlan(fp: Fingerprint, o: PlanOptions = {}): Promise<Plan> {
  if (fp.cases.length === 0) throw new MedsegIoError('BAD_DATA', 'the fingerprint lists no cases');
  const planDims = o.dims ?? (fp.dims === 2 ? '2d' : '3d_fullres');
  const d: 2 | 3 = planDims === '2d' ? 2 : 3;
  if (d === 3 && fp.dims === 2) throw new MedsegIoError('BAD_DATA', 'a 3d_fullres plan needs 3D data; this dataset is 2D');
  const target = targetSpacingOf(fp);
  if (d === 2) target[0] = median(fp.cases.map((c) => c.spacing[0])); // 2D: slices stay as they are
  const full = await planAtSpacing(fp, o, planDims, target);
  const object = d === 2 && o.budget ? typicalObject(fp.cases) : null;
  if (!object) return full;
  return planForObjects(full, object, (spacing) => planAtSpacing(fp, o, planDims, spacing));
}

const mm = (v: number) => (v >= 10 ? v.toFixed(0) : v.toPrecision(2));

/**
 * A 2D budgeted plan whose patch sees the typical object whole: the
 * full-resolution plan when its patch covers the object; otherwise the
 * smallest coarsening of the in-plane spacing whose plan covers it (or the
 * coarsest allowed), never thinning the objects below MIN_THICKNESS_PIXELS.
 */
export async function planForObjects(full: Plan, object: ObjectSize, planAt: (spacing: Zyx) => Promise<Plan>): Promise<Plan> {
  const inPlane = (p: Plan): [number, number] => [p.targetSpacing[1], p.targetSpacing[2]];
  const objectText = `the typical object is ${mm(object.extentMm[0])} x ${mm(object.extentMm[1])} mm, ${mm(object.thicknessMm)} mm thick`;
  const patchText = (p: Plan) =>
    `${p.patchSize.join('x')} patch at ${inPlane(p).map(mm).join(' x ')} mm covers ${mm(p.patchSize[0]! * p.targetSpacing[1])} x ${mm(p.patchSize[1]! * p.targetSpacing[2])} mm`;
  const fullCoverage = patchCoverage(object, full.patchSize, inPlane(full));
  if (fullCoverage >= 1) {
    return { ...full, resolution: { factor: 1, reason: `full resolution: ${objectText}; the ${patchText(full)}` } };
  }
  const factors = allowedFactors(object, inPlane(full));
  if (factors.length === 0) {
    return {
      ...full,
      resolution: {
        factor: 1,
        reason: `full resolution: ${objectText}, larger than the ${patchText(full)}, but a coarser grid would make it thinner than ${MIN_THICKNESS_PIXELS} pixels`,
      },
    };
  }
  // The smallest coarsening whose patch covers the object; failing that, the
  // one whose patch covers most of it, if clearly more than at full resolution
  // (on a machine where the step time is overhead-bound, coarser grids buy no
  // larger field of view and full resolution stays).
  let best = { plan: full, factor: 1, coverage: fullCoverage };
  for (const f of factors) {
    const t = full.targetSpacing;
    const plan = await planAt([t[0], t[1] * f, t[2] * f]);
    const coverage = patchCoverage(object, plan.patchSize, inPlane(plan));
    if (coverage > best.coverage * 1.05) best = { plan, factor: f, coverage };
    if (coverage >= 1) break;
  }
  const { plan, factor, coverage } = best;
  if (factor === 1) {
    return {
      ...full,
      resolution: {
        factor: 1,
        reason: `full resolution: ${objectText}, larger than the ${patchText(full)}, and no coarser grid's patch (down to ${MIN_THICKNESS_PIXELS}-pixel thickness) covers clearly more of it`,
      },
    };
  }
  const why = coverage >= 1 ? 'the smallest coarsening whose patch covers it' : `the patch covering most of it, ${Math.round(coverage * 100)}% of its area`;
  return {
    ...plan,
    resolution: {
      factor,
      reason: `${factor}x coarser in-plane (${why}): ${objectText}; at full resolution the ${patchText(full)}; now the ${patchText(plan)}; predictions are resampled back to each image's own grid`,
    },
  };
}

async function planAtSpacing(fp: Fingerprint, o: PlanOptions, planDims: '2d' | '3d_fullres', target: Zyx): Promise<Plan> {
  const d: 2 | 3 = planDims === '2d' ? 2 : 3;
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
  let epochValidationCases: number | undefined;
  let validation = 0;
  if (o.budget) {
    const cores = o.budget.cores ?? cpus().length;
    const memoryGiB = o.budget.memoryGiB ?? Math.floor(totalmem() / 1024 ** 3 / 2);
    const tp = o.throughput ?? (await (o.throughputMeter ?? measureThroughput)(d, cores));
    const targetIterations = o.budget.targetIterations ?? 2000;
    const seconds = o.budget.minutes * 60 * 0.85; // the rest: preprocessing, the final validation, checkpoints
    const stepOf = (c: Config) => tp.overheadSeconds + (3 * c.batchSize * unetMacs(c.patchSize, c.strides, c.kernelSizes, c.features, C, K)) / tp.macsPerSecond;
    const bytesOf = (c: Config) => activationElements(c.patchSize, c.strides, c.features, C) * c.batchSize * 4 * 3;
    // Candidates: narrower networks, smaller patches (the nnU-Net shrinking rule again), smaller batches.
    const cands: { c: Config; q: number }[] = [];
    const vox0 = ref.patchSize.reduce((a, b) => a * b, 1);
    // 3D never starts at 8 channels: libtorch 1.13's oneDNN weight-gradient
    // kernel for 3D convolutions with 8 input channels is an order of
    // magnitude slower than with 16 (in PyTorch too), which a MAC-based
    // throughput model cannot see.
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
    // The training settings each candidate would get (the plan's optimizer
    // and loss): the step timer trains with them.
    const trainingOf = (c: Config) =>
      defaultTraining({ dims: planDims, patchSize: c.patchSize, medianShape, budget: { minutes: o.budget!.minutes } }, o.training);
    // Choosing with a step timer. allowed: the step time that reaches the
    // target iterations. The MAC model's own choice (scale 1) is kept when its
    // timed step is at most TIMING_MARGIN over `allowed` and not more than
    // TIMING_MARGIN under the model's prediction; otherwise the model is
    // scaled by measured / predicted (down when the machine is faster than
    // the model, e.g. training in bf16, so that the faster steps buy a larger
    // patch or wider network by the candidates' preference; only growing
    // after the first timing), and an untimed candidate must then fit with
    // the margin to spare, a timed one within the margin. A candidate timed
    // too slow is judged by its own time, so the rounds cannot come back to it.
    const allowed = seconds / targetIterations;
    let scale = 1;
    const timedSteps = new Map<Config, number>();
    const predicted = (c: Config) => timedSteps.get(c) ?? scale * stepOf(c);
    const fitsBudget = (c: Config) => {
      const timed = timedSteps.get(c);
      if (timed !== undefined) return timed <= allowed * (1 + TIMING_MARGIN);
      return scale === 1 ? stepOf(c) <= allowed : scale * stepOf(c) <= allowed / (1 + TIMING_MARGIN);
    };
    const choose = (): { c: Config; note: string } => {
      const ok = fits.filter(({ c }) => fitsBudget(c)).sort((a, b) => b.q - a.q);
      if (ok.length > 0) return { c: ok[0]!.c, note: `best candidate reaching ${targetIterations} iterations` };
      // None fits: the cheapest by the MAC model, whose order of candidates the scale does not change.
      const fastest = [...fits].sort((a, b) => stepOf(a.c) - stepOf(b.c))[0]!.c;
      return { c: fastest, note: `no candidate reaches ${targetIterations} iterations in ${o.budget!.minutes} min: using the fastest` };
    };
    let pick = choose();
    const calibration: StepCalibration[] = [];
    for (let round = 0; o.stepTimer && round < 3 && !timedSteps.has(pick.c); round++) {
      const c = pick.c;
      const timed = await o.stepTimer(networkConfig(c, o.architecture, d, C, K), c.patchSize, c.batchSize, trainingOf(c));
      calibration.push({
        patchSize: c.patchSize,
        batchSize: c.batchSize,
        baseFeatures: c.features[0]!,
        predictedSeconds: predicted(c),
        measuredSeconds: timed,
      });
      timedSteps.set(c, timed);
      // The model's choice stands when it fits and the model was not pessimistic about it.
      if (round === 0 && fitsBudget(c) && timed >= stepOf(c) * (1 - TIMING_MARGIN)) break;
      scale = round === 0 ? timed / stepOf(c) : Math.max(scale, timed / stepOf(c));
      pick = choose();
    }
    chosen = pick.c;
    const step = predicted(chosen);
    // Every epoch ends with a validation pass over a fold's validation cases
    // (a fifth of the cases with the default 5 folds). An epoch is made long
    // enough (up to a third of the run) to keep the pass at most
    // VALIDATION_SHARE of it; where even that is not enough, each pass takes
    // an even subset of the cases. The iterations fill what the passes leave.
    const foldValidationCases = Math.max(1, Math.ceil(fp.cases.length / 5));
    const perCase = validationSeconds(chosen.patchSize, chosen.batchSize, step, [...medianShape], 1);
    const iterationsFor = (cases: number) => Math.ceil((cases * perCase * (1 - VALIDATION_SHARE)) / (VALIDATION_SHARE * step));
    const roughTotal = Math.max(1, Math.floor(seconds / step));
    const usual = roughTotal >= 2500 ? 250 : Math.max(1, Math.min(roughTotal, Math.max(25, Math.round(roughTotal / 10))));
    iterationsPerEpoch = Math.max(usual, Math.min(iterationsFor(foldValidationCases), Math.floor(roughTotal / 3)));
    const cases = Math.min(foldValidationCases, Math.max(1, Math.floor((iterationsPerEpoch * VALIDATION_SHARE * step) / ((1 - VALIDATION_SHARE) * perCase))));
    if (cases < foldValidationCases) epochValidationCases = cases;
    validation = cases * perCase;
    const total = Math.max(1, Math.floor(seconds / (step + validation / iterationsPerEpoch)));
    iterationsPerEpoch = Math.min(iterationsPerEpoch, total);
    epochs = Math.max(1, Math.floor(total / iterationsPerEpoch));
    budget = {
      minutes: o.budget.minutes,
      cores,
      memoryGiB,
      stepSeconds: step,
      validationSeconds: validation,
      macsPerSecond: tp.macsPerSecond / scale,
      overheadSeconds: tp.overheadSeconds * scale,
      baseFeatures: chosen.features[0]!,
      targetIterations,
      note: pick.note,
      ...(calibration.length > 0 ? { calibration } : {}),
      ...(o.stepTimer
        ? {
            timingRule:
              `step times: the median of several repetitions on an otherwise idle machine (a repetition during which other processes used over ${Math.round(LOAD_THRESHOLD * 100)}% of the CPUs is re-timed); ` +
              `the throughput model's choice stands unless its timed step is over ${Math.round(TIMING_MARGIN * 100)}% slower than the ${allowed.toPrecision(3)} s per step the budget allows, and a replacement must fit with that margin` +
              (o.timingMemory ? `; ${o.timingMemory}` : ''),
          }
        : {}),
    };
  }
  const network = networkConfig(chosen, o.architecture, d, C, K);
  const separateZ = d === 3 && Math.max(...target) / Math.min(...target) > ANISO;
  const plan = completePlan(
    {
      schema: PLAN_SCHEMA,
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
    },
    o.training,
  );
  if (epochValidationCases !== undefined && plan.training.epochValidationCases === undefined) plan.training.epochValidationCases = epochValidationCases;
  return plan;
}
