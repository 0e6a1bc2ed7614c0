/** Checks of a (possibly hand-edited) plan; each failure is a MedsegIoError naming the field. */
import { MedsegIoError } from '../io/errors.ts';
import { PLAN_SCHEMA, type Plan, type PlanDraft } from './types.ts';

function fail(path: string | undefined, msg: string): never {
  throw new MedsegIoError('BAD_DATA', `invalid plan: ${msg}`, path);
}

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const nonNegInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
const isPrecision = (v: unknown) => v === 'fp32' || v === 'bf16';
const nonNeg = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Checks every field of a draft, and the training and inference sections as far as they are present. */
export function validatePlanDraft(p: unknown, path?: string): PlanDraft {
  if (!p || typeof p !== 'object') fail(path, 'not a JSON object');
  const plan = p as PlanDraft;
  if (plan.schema !== PLAN_SCHEMA) fail(path, `schema must be "${PLAN_SCHEMA}", got ${JSON.stringify(plan.schema)}`);
  if (plan.dims !== '2d' && plan.dims !== '3d_fullres') fail(path, `dims must be "2d" or "3d_fullres", got ${JSON.stringify(plan.dims)}`);
  const d = plan.dims === '2d' ? 2 : 3;
  if (!Array.isArray(plan.channels) || plan.channels.length === 0) fail(path, 'channels must be a non-empty list of names');
  if (!plan.labels || typeof plan.labels !== 'object' || !(0 in plan.labels)) fail(path, 'labels must map class ids (with 0) to names');
  for (const key of ['targetSpacing', 'medianShape'] as const) {
    const v = plan[key];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((s) => typeof s === 'number' && s > 0)) fail(path, `${key} must be three positive numbers [z, y, x]`);
  }
  if (!Array.isArray(plan.patchSize) || plan.patchSize.length !== d || !plan.patchSize.every(posInt)) fail(path, `patchSize must be ${d} positive integers`);
  if (!posInt(plan.batchSize)) fail(path, 'batchSize must be a positive integer');
  if (!posInt(plan.iterationsPerEpoch) || !posInt(plan.epochs)) fail(path, 'iterationsPerEpoch and epochs must be positive integers');
  if (plan.budget !== null && (typeof plan.budget !== 'object' || !(typeof plan.budget.minutes === 'number' && plan.budget.minutes > 0))) {
    fail(path, 'budget must be null (no time budget) or an object with minutes > 0');
  }
  const n = plan.network;
  if (!n || typeof n !== 'object') fail(path, 'network is missing');
  if (typeof n.architecture !== 'string' || n.architecture === '') fail(path, 'network.architecture must name an architecture');
  if (n.dims !== d) fail(path, `network.dims (${n.dims}) does not match dims ${plan.dims}`);
  if (n.inChannels !== plan.channels.length) fail(path, `network.inChannels (${n.inChannels}) must equal the number of channels (${plan.channels.length})`);
  if (n.numClasses !== Object.keys(plan.labels).length)
    fail(path, `network.numClasses (${n.numClasses}) must equal the number of labels (${Object.keys(plan.labels).length})`);
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
    if (!['ct', 'zscore', 'rescale01', 'rgb01', 'none'].includes(nm.scheme))
      fail(path, `normalization[${c}].scheme "${nm.scheme}" is not one of ct, zscore, rescale01, rgb01, none`);
    if (nm.scheme === 'ct' && !(Array.isArray(nm.clip) && Number.isFinite(nm.mean) && Number.isFinite(nm.std)))
      fail(path, `normalization[${c}]: CT needs clip [lo, hi], mean and std`);
  });
  const aug = plan.augmentation as unknown as Record<string, { p?: number }>;
  if (!aug || typeof aug !== 'object') fail(path, 'augmentation is missing');
  for (const k of ['rotation', 'scaling', 'elastic', 'mirror', 'noise', 'blur', 'brightness', 'contrast', 'lowResolution', 'gamma']) {
    if (!aug[k] || typeof aug[k] !== 'object') fail(path, `augmentation.${k} is missing`);
  }
  if (typeof (aug.dummy2d as unknown) !== 'boolean') fail(path, 'augmentation.dummy2d must be true or false');
  for (const [k, v] of Object.entries(aug)) {
    if (v && typeof v === 'object' && 'p' in v && !(typeof v.p === 'number' && v.p >= 0 && v.p <= 1))
      fail(path, `augmentation.${k}.p must be a probability in [0, 1]`);
  }
  if (!(plan.oversampleForeground >= 0 && plan.oversampleForeground <= 1)) fail(path, 'oversampleForeground must be in [0, 1]');
  const t = plan.training;
  if (t !== undefined) {
    if (!t || typeof t !== 'object') fail(path, 'training must be an object');
    const check = (key: string, ok: boolean, what: string) => {
      if (!ok) fail(path, `training.${key} ${what}`);
    };
    if (t.optimizer !== undefined)
      check('optimizer', t.optimizer === 'sgd' || t.optimizer === 'adamw', `must be "sgd" or "adamw", got ${JSON.stringify(t.optimizer)}`);
    if (t.lr !== undefined) check('lr', nonNeg(t.lr), 'must be a number >= 0');
    if (t.weightDecay !== undefined) check('weightDecay', nonNeg(t.weightDecay), 'must be a number >= 0');
    if (t.momentum !== undefined) check('momentum', nonNeg(t.momentum) && t.momentum < 1, 'must be in [0, 1)');
    if (t.schedule !== undefined)
      check('schedule', ['poly', 'cosine', 'constant'].includes(t.schedule), `must be poly, cosine or constant, got ${JSON.stringify(t.schedule)}`);
    if (t.warmupEpochs !== undefined) check('warmupEpochs', nonNeg(t.warmupEpochs), 'must be a number >= 0');
    if (t.gradClip !== undefined) check('gradClip', nonNeg(t.gradClip), 'must be a number >= 0 (0 disables clipping)');
    if (t.checkpointEvery !== undefined) check('checkpointEvery', posInt(t.checkpointEvery), 'must be a positive integer');
    if (t.earlyStoppingPatience !== undefined) check('earlyStoppingPatience', nonNegInt(t.earlyStoppingPatience), 'must be an integer >= 0 (0: never)');
    if (t.timeBudgetMinutes !== undefined) check('timeBudgetMinutes', nonNeg(t.timeBudgetMinutes), 'must be a number >= 0 (0: no limit)');
    if (t.epochValidationCases !== undefined) check('epochValidationCases', posInt(t.epochValidationCases), 'must be a positive integer (absent: all)');
    if (t.precision !== undefined) check('precision', isPrecision(t.precision), `must be "fp32" or "bf16", got ${JSON.stringify(t.precision)}`);
    const wa = t.weightAveraging;
    if (wa !== undefined)
      check(
        'weightAveraging',
        !!wa &&
          typeof wa === 'object' &&
          typeof wa.from === 'number' &&
          wa.from >= 0 &&
          wa.from < 1 &&
          (wa.lr === undefined || (typeof wa.lr === 'number' && wa.lr > 0 && wa.lr <= 1)),
        'must be { "from": <share of the run in [0, 1)>, "lr"?: <share of the peak learning rate in (0, 1]> } (absent: no averaging)',
      );
    const l = t.loss;
    if (l !== undefined) {
      if (!l || typeof l !== 'object') fail(path, 'training.loss must be an object');
      if (l.name !== undefined)
        check('loss.name', ['dice_ce', 'dice_focal', 'ce', 'dice'].includes(l.name), `must be dice_ce, dice_focal, ce or dice, got ${JSON.stringify(l.name)}`);
      if (l.batchDice !== undefined) check('loss.batchDice', typeof l.batchDice === 'boolean', 'must be true or false');
      if (l.includeBackground !== undefined) check('loss.includeBackground', typeof l.includeBackground === 'boolean', 'must be true or false');
      if (l.skeletonRecall !== undefined) {
        check('loss.skeletonRecall', nonNeg(l.skeletonRecall), 'must be a number >= 0 (the weight of the skeleton-recall term; 0: none)');
        check('loss.skeletonRecall', l.skeletonRecall === 0 || d === 2, 'applies to 2d plans only (the skeletons are 2D)');
      }
    }
  }
  const inf = plan.inference;
  if (inf !== undefined) {
    if (!inf || typeof inf !== 'object') fail(path, 'inference must be an object');
    if (inf.mirror !== undefined && typeof inf.mirror !== 'boolean') fail(path, 'inference.mirror must be true or false');
    if (inf.stepFraction !== undefined && !(typeof inf.stepFraction === 'number' && inf.stepFraction > 0 && inf.stepFraction <= 1))
      fail(path, 'inference.stepFraction must be in (0, 1]');
    if (inf.transpose !== undefined && typeof inf.transpose !== 'boolean') fail(path, 'inference.transpose must be true or false');
    if (inf.transpose && d !== 2) fail(path, 'inference.transpose applies to 2d plans only');
    if (inf.precision !== undefined && !isPrecision(inf.precision))
      fail(path, `inference.precision must be "fp32" or "bf16", got ${JSON.stringify(inf.precision)}`);
  }
  const pc = plan.precisionChoice;
  if (pc !== undefined && (!pc || typeof pc !== 'object' || typeof pc.reason !== 'string')) fail(path, 'precisionChoice must be an object with a reason');
  return plan;
}

/** Checks a complete plan: a valid draft with every training and inference field present. */
export function validatePlan(p: unknown, path?: string): Plan {
  const plan = validatePlanDraft(p, path);
  const t = plan.training;
  if (!t) fail(path, 'training is missing (complete the plan with completePlan)');
  for (const key of [
    'optimizer',
    'lr',
    'weightDecay',
    'momentum',
    'schedule',
    'warmupEpochs',
    'loss',
    'gradClip',
    'checkpointEvery',
    'earlyStoppingPatience',
    'timeBudgetMinutes',
    'precision',
  ] as const) {
    if (t[key] === undefined) fail(path, `training.${key} is missing`);
  }
  if (t.loss!.name === undefined || t.loss!.batchDice === undefined) fail(path, 'training.loss needs name and batchDice');
  const inf = plan.inference;
  if (!inf || inf.mirror === undefined || inf.stepFraction === undefined || inf.transpose === undefined || inf.precision === undefined)
    fail(path, 'inference needs mirror, stepFraction, transpose and precision');
  if (!plan.precisionChoice) fail(path, 'precisionChoice is missing (complete the plan with completePlan)');
  if (!plan.augmentation.transpose) fail(path, 'augmentation.transpose is missing');
  return plan as Plan;
}
