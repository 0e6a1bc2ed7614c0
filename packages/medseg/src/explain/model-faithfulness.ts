/**
 * The faithfulness numbers a model card carries (eval/report/modelcard.ts):
 * Grad-CAM of one class on one validation case, targeted at the class's
 * predicted mask, with its randomisation test and deletion curve
 * (explain/faithfulness.ts). The case is the fold's median-Dice case among
 * those where the class is predicted, so the numbers describe a typical
 * case rather than a chosen one.
 */
import type { PreprocessedCase } from '../data/types.ts';
import type { ModelCardFaithfulness } from '../eval/report/modelcard.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { Plan } from '../plan/types.ts';
import { explainOnGrid } from './explain-case.ts';

export interface FaithfulnessCandidate {
  id: string;
  /** The case's mean foreground Dice. */
  dice: number;
  /** Whether the explained class is predicted somewhere in the case. */
  predicted: boolean;
}

/** The median-Dice candidate among those with the class predicted (the lower middle one of an even count); null without one. */
export function medianDiceCase(candidates: readonly FaithfulnessCandidate[]): string | null {
  const usable = candidates.filter((c) => c.predicted && Number.isFinite(c.dice)).sort((a, b) => a.dice - b.dice || (a.id < b.id ? -1 : 1));
  return usable.length ? usable[Math.floor((usable.length - 1) / 2)]!.id : null;
}

/** Grad-CAM of `classIndex` (default 1) on a validation case with its faithfulness checks. */
export function validationFaithfulness(
  net: SegmentationNetwork,
  plan: Plan,
  c: PreprocessedCase,
  fold: number,
  o: { classIndex?: number; seed?: number; deletionSteps?: number; caseChoice?: string } = {},
): ModelCardFaithfulness {
  const t0 = performance.now();
  const classIndex = o.classIndex ?? 1;
  const steps = o.deletionSteps ?? 10;
  const x = explainOnGrid(net, plan, c, { method: 'gradcam', classIndex, seed: o.seed, deletionSteps: steps });
  const f = x.faithfulness!;
  return {
    method: 'gradcam',
    layer: typeof x.settings.layer === 'string' ? x.settings.layer : null,
    classIndex,
    className: plan.labels[classIndex] ?? null,
    case: c.id,
    fold,
    caseChoice: o.caseChoice ?? 'median Dice of the fold',
    regionVoxels: x.region.voxels,
    massInRegion: x.massInRegion,
    randomisation: { spearman: f.randomisation.spearman, spearmanAbs: f.randomisation.spearmanAbs, passes: f.randomisation.passes, seed: f.randomisation.seed },
    deletion: { auc: f.deletion.auc, randomAuc: f.deletion.randomAuc, steps },
    seconds: (performance.now() - t0) / 1000,
  };
}
