/**
 * The one place a plan's defaults are derived. `completePlan` turns a draft
 * (the planner's output, a hand-written or older file) into a complete plan:
 * sections and fields left out get their defaults, fields present are kept.
 *
 * Training: with a CPU time budget, AdamW (lr 1e-3, weight decay 0.01, cosine
 * decay after one warm-up epoch); without one, nnU-Net's SGD (Nesterov
 * momentum 0.99, lr 0.01, poly decay, weight decay 3e-5). nnU-Net's SGD
 * schedule is tuned for 250k iterations and barely starts to learn in the few
 * hundred a CPU budget allows, where AdamW already segments. Both use Dice +
 * CE and gradient clipping at 12.
 *
 * Batch Dice (one Dice over the whole batch rather than a mean of per-sample
 * Dice) as nnU-Net's planner sets it: on for 2D, where a patch is one slice
 * and many hold little or no foreground; in 3D only where nnU-Net would also
 * plan a low-resolution stage, i.e. the patch covers less than a quarter of
 * the median image (its lowres_creation_threshold).
 *
 * Precision: fp32 for training and inference unless the plan says bf16
 * (pipeline/precision-choice.ts measures both when planning).
 *
 * Inference: nnU-Net's mirroring TTA with half-patch steps; in 2D also the
 * transposed plane (all 8 symmetries of the square) when the plane's two
 * axes have the same spacing and training rotated through at least a quarter
 * turn or transposed, so the network has seen every orientation.
 */
import type { AugmentationParams, BudgetInfo, InferenceSettings, Plan, PlanDraft, TrainingChoices, TrainingSettings, Zyx } from './types.ts';
import { PLAN_SCHEMA } from './types.ts';

/** nnU-Net's anisotropy threshold: an axis > 3x coarser than the others is treated apart. */
export const ANISOTROPY_THRESHOLD = 3;

/** Whether a [z, y, x] spacing has equal y and x (to 0.1%): the plane can be transposed. */
export function hasSquarePixels(spacing: Zyx): boolean {
  return Math.abs(spacing[1] - spacing[2]) <= 1e-3 * Math.max(spacing[1], spacing[2]);
}

/** nnU-Net's augmentation probabilities for a patch, plus exact transposition for 2D square pixels. */
export function defaultAugmentation(dims: 2 | 3, patchSize: number[], squarePixels = false): AugmentationParams {
  // nnU-Net: anisotropic 3D patches (max / z > 3) get in-plane ("dummy 2D") spatial augmentation.
  const dummy2d = dims === 3 && Math.max(...patchSize) / patchSize[0]! > ANISOTROPY_THRESHOLD;
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

export function usesBatchDice(plan: Pick<PlanDraft, 'dims' | 'patchSize' | 'medianShape'>): boolean {
  if (plan.dims === '2d') return true;
  const patch = plan.patchSize.reduce((a, b) => a * b, 1);
  const image = plan.medianShape.reduce((a, b) => a * b, 1);
  return patch / image < 0.25;
}

/** The optimizer a plan trains with unless told otherwise: AdamW under a time budget, nnU-Net's SGD without. */
export function defaultOptimizer(hasBudget: boolean): 'sgd' | 'adamw' {
  return hasBudget ? 'adamw' : 'sgd';
}

/** Training settings for a plan's dims, patch, median shape and budget. */
export function defaultTraining(
  plan: Pick<PlanDraft, 'dims' | 'patchSize' | 'medianShape'> & { budget: Pick<BudgetInfo, 'minutes'> | null },
  c: TrainingChoices = {},
): TrainingSettings {
  const optimizer = c.optimizer ?? defaultOptimizer(plan.budget !== null);
  return {
    optimizer,
    lr: optimizer === 'sgd' ? 0.01 : 1e-3,
    weightDecay: optimizer === 'sgd' ? 3e-5 : 0.01,
    momentum: 0.99,
    schedule: optimizer === 'sgd' ? 'poly' : 'cosine',
    warmupEpochs: optimizer === 'sgd' ? 0 : 1,
    loss: { name: c.loss ?? 'dice_ce', batchDice: usesBatchDice(plan), ...(c.skeletonRecall ? { skeletonRecall: c.skeletonRecall } : {}) },
    gradClip: 12,
    checkpointEvery: 1,
    earlyStoppingPatience: 0,
    timeBudgetMinutes: plan.budget?.minutes ?? 0,
    precision: 'fp32',
    ...(c.averageWeights !== undefined ? { weightAveraging: { from: c.averageWeights, ...(c.averageLr !== undefined ? { lr: c.averageLr } : {}) } } : {}),
  };
}

export function defaultInference(plan: Pick<PlanDraft, 'dims' | 'targetSpacing' | 'augmentation'>): InferenceSettings {
  const rot = plan.augmentation.rotation;
  const trainedOriented = (rot.p > 0 && (rot.maxDegrees[0] ?? 0) >= 90) || (plan.augmentation.transpose?.p ?? 0) > 0;
  const transpose = plan.dims === '2d' && hasSquarePixels(plan.targetSpacing) && trainedOriented;
  return { mirror: true, stepFraction: 0.5, transpose, precision: 'fp32' };
}

/** The reason a plan without a measured choice runs in fp32 (or in what its file sets). */
export const UNMEASURED_PRECISION = 'not measured when planned: fp32 unless the plan file sets bf16';

/**
 * A complete plan from a draft: every section and field the draft leaves
 * out gets its default; `choices` pick the optimizer and loss where the
 * draft has none.
 */
export function completePlan(draft: PlanDraft, choices: TrainingChoices = {}): Plan {
  const augmentation = { ...draft.augmentation, transpose: draft.augmentation.transpose ?? { p: 0 } };
  const t = draft.training ?? {};
  const base = defaultTraining(draft, {
    optimizer: t.optimizer ?? choices.optimizer,
    loss: t.loss?.name ?? choices.loss,
    skeletonRecall: t.loss?.skeletonRecall ?? choices.skeletonRecall,
    averageWeights: choices.averageWeights,
    averageLr: choices.averageLr,
  });
  const training: TrainingSettings = { ...base, ...t, loss: { ...base.loss, ...t.loss } } as TrainingSettings;
  const inference: InferenceSettings = { ...defaultInference({ ...draft, augmentation }), ...draft.inference };
  const precisionChoice = draft.precisionChoice ?? { reason: UNMEASURED_PRECISION };
  return { ...draft, schema: PLAN_SCHEMA, augmentation, training, inference, precisionChoice };
}
