/**
 * Prediction of one preprocessed case (on the training grid), as validation
 * during training and the final cross-validation use it, and the per-class
 * Dice those runs score it with.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { PreprocessedCase } from '../data/types.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { Precision } from '../plan/types.ts';
import { slidingWindowLogits, ttaOptions, type TtaChoice } from './sliding-window.ts';
import { predictMembers, type UncertaintyMaps, type UncertaintySource } from './uncertainty.ts';

/** Per-class Dice (classes 1..K-1) of a label map against the reference; NaN where both are empty. */
export function diceScores(pred: Uint8Array, ref: Uint8Array, numClasses: number): number[] {
  const tp = new Float64Array(numClasses);
  const np = new Float64Array(numClasses);
  const nr = new Float64Array(numClasses);
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!;
    const r = ref[i]!;
    np[p]!++;
    nr[r]!++;
    if (p === r) tp[p]!++;
  }
  const out: number[] = [];
  for (let c = 1; c < numClasses; c++) out.push(np[c]! + nr[c]! === 0 ? NaN : (2 * tp[c]!) / (np[c]! + nr[c]!));
  return out;
}

/** Argmax label map (uint8) of sliding-window logits over a preprocessed case, with the given TTA. */
export function predictCaseLabels(
  net: { forward(x: Tensor): Tensor | Tensor[] },
  c: PreprocessedCase,
  patchSize: number[],
  tta: TtaChoice & { stepFraction?: number; precision?: Precision },
): Uint8Array {
  return torch.tidy(() => {
    const [Z, Y, X] = c.shape;
    const spatial = patchSize.length === 2 ? [Y, X] : [Z, Y, X];
    const img = torch.tensor(c.data, [c.channels, ...spatial]);
    const logits = slidingWindowLogits(net, img, { patchSize, stepFraction: tta.stepFraction, precision: tta.precision, ...ttaOptions(tta, spatial.length) });
    return logits.argmax(0).to('uint8').toTypedArray() as Uint8Array;
  });
}

/**
 * The plan's TTA passes of a preprocessed case as uncertainty members: the
 * mean logits' argmax is predictCaseLabels' map, and the maps give the case's
 * uncertainty (infer/uncertainty.ts), their probabilities at `temperature`
 * (default 1). The caller disposes the maps.
 */
export function predictCaseMembers(
  net: SegmentationNetwork,
  c: PreprocessedCase,
  patchSize: number[],
  tta: TtaChoice & { stepFraction?: number; precision?: Precision },
  temperature = 1,
): UncertaintyMaps {
  return torch.tidy(() => {
    const [Z, Y, X] = c.shape;
    const spatial = patchSize.length === 2 ? [Y, X] : [Z, Y, X];
    const img = torch.tensor(c.data, [c.channels, ...spatial]);
    const t = ttaOptions(tta, spatial.length);
    return predictMembers([net], img, {
      sources: validationSources(tta, spatial.length),
      temperature,
      mirrorAxes: t.mirrorAxes ?? [],
      mirrorSingleAxes: t.mirrorSingleAxes,
      transposeAxes: t.transposeAxes,
      window: { patchSize, stepFraction: tta.stepFraction, precision: tta.precision },
    });
  });
}

/**
 * The uncertainty sources of one network's members on a validation case: the
 * plan's TTA passes when it has any. The triage rule is fitted on scores from
 * these members, so a prediction's score is comparable when each fold's
 * members come from the same sources.
 */
export function validationSources(tta: TtaChoice, spatialDims: number): UncertaintySource[] {
  const t = ttaOptions(tta, spatialDims);
  return t.mirrorAxes?.length || t.transposeAxes ? ['tta'] : [];
}

/** Argmax (uint8) over dim 0 of [K, ...spatial] logits or probabilities. */
export function argmaxLabels(scores: Tensor): Uint8Array {
  return torch.tidy(() => scores.argmax(0).to('uint8').toTypedArray() as Uint8Array);
}
