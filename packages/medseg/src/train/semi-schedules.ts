/**
 * The schedules of semi-supervised training, as functions of where the run
 * stands: the sigmoid ramp-up of the unlabelled loss weight (Laine & Aila;
 * Tarvainen & Valpola's Mean Teacher), the teacher's EMA decay (Mean
 * Teacher: the true average early on, then a fixed decay) and the entropy
 * threshold of uncertainty-aware masking (Yu et al., UA-MT: from 3/4 of the
 * maximum entropy ln K up to ln K).
 */
import type { SemiSupervisedSettings } from '../plan/types.ts';

/** exp(-5 (1 - t)^2) with t = progress / length clipped to [0, 1]; 1 when there is no ramp-up. */
export function sigmoidRampUp(progress: number, length: number): number {
  if (!(length > 0)) return 1;
  const t = Math.min(1, Math.max(0, progress / length));
  return Math.exp(-5 * (1 - t) * (1 - t));
}

/** The EMA decay at optimizer step `step` (0-based): min(1 - 1 / (step + 1), max). */
export function emaDecayAt(step: number, max: number): number {
  return Math.min(1 - 1 / (step + 1), max);
}

/** The weight of the unlabelled loss when `progress` (0..1) of the run is done. */
export function unlabelledWeight(s: Pick<SemiSupervisedSettings, 'weight' | 'rampUp'>, progress: number): number {
  return s.weight * sigmoidRampUp(progress, s.rampUp);
}

/** Voxels whose teacher entropy (nats) is below this count in the consistency loss: (3/4 + 1/4 ramp) ln K. */
export function entropyThreshold(numClasses: number, progress: number, rampUp: number): number {
  return (0.75 + 0.25 * sigmoidRampUp(progress, rampUp)) * Math.log(numClasses);
}
