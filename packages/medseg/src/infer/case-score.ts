/**
 * The per-case uncertainty score on plain arrays, engine-free so that a web
 * page scores a case exactly as Node does (infer/uncertainty.ts wraps it for
 * tensors), and the rule for when a model's triage threshold applies to a
 * score.
 */
import type { UncertaintySource } from './uncertainty-sources.ts';

export interface CaseUncertainty {
  /** Members the statistics came from. */
  members: number;
  /** Voxels where the mean prediction or any confident member region is foreground (the region scored). */
  regionVoxels: number;
  /** Mean predictive entropy over the region, divided by log K (0 certain .. 1 uniform). */
  meanEntropy: number;
  /** Mean mutual information over the region, divided by log K. */
  meanMutualInformation: number;
}

/**
 * One number per case for triage: mean normalised uncertainty over the
 * predicted foreground and its uncertain rim (voxels with predictive entropy
 * above half its maximum), so that a small structure is not averaged away
 * by a large certain background. A case with no such voxel scores 0.
 * `entropy` and `mutualInformation` are in nats, voxel for voxel with `labels`.
 */
export function caseScore(
  entropy: ArrayLike<number>,
  mutualInformation: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  members: number,
): CaseUncertainty {
  if (labels.length !== entropy.length || mutualInformation.length !== entropy.length) {
    throw new Error(`labels have ${labels.length} voxels, the uncertainty maps ${entropy.length} and ${mutualInformation.length}`);
  }
  const logK = Math.log(Math.max(2, numClasses));
  let n = 0;
  let sumH = 0;
  let sumMi = 0;
  for (let i = 0; i < entropy.length; i++) {
    if (labels[i]! > 0 || entropy[i]! > 0.5 * logK) {
      n++;
      sumH += entropy[i]!;
      sumMi += mutualInformation[i]!;
    }
  }
  return {
    members,
    regionVoxels: n,
    meanEntropy: n ? sumH / n / logK : 0,
    meanMutualInformation: n ? sumMi / n / logK : 0,
  };
}

/** What a triage rule was fitted on: its members' sources and how many per fold (a model's calibration.json). */
export interface TriageFit {
  /** Members per case the scores came from (the plan's TTA passes). */
  members: number;
  /** Their sources ('tta', or none for a plan without TTA); absent in folders calibrated before it was recorded. */
  sources?: string[];
}

/**
 * Why the model's triage rule does not apply to a score from these members
 * (null when it does): the rule's threshold was fitted on scores of one
 * fold's members from the calibration's sources (the plan's TTA passes), so
 * each fold's members here must come from the same sources and be as many.
 */
export function triageMismatch(cal: TriageFit, sources: readonly UncertaintySource[], membersPerFold: number): string | null {
  const own: UncertaintySource[] = sources.filter((s) => s !== 'ensemble');
  const fitted = cal.sources ?? (own.includes('mc-dropout') ? null : own);
  const same = fitted !== null && fitted.length === own.length && fitted.every((s) => own.includes(s as UncertaintySource));
  if (same && membersPerFold === cal.members) return null;
  const name = (list: readonly string[]) => (list.length ? list.join(', ') : 'a single pass');
  return (
    `the review threshold was fitted on scores from ${name(fitted ?? ['tta'])} (${cal.members} member(s) per fold); ` +
    `these come from ${name(own)} (${membersPerFold} per fold): predict with the default uncertainty sources and the plan's TTA for a flag`
  );
}
