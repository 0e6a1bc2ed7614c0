/**
 * What the validation cases say about a model's confidence, gathered case by
 * case during the final cross-validation and summarised once: the
 * temperature that calibrates its probabilities (fitted on a uniform
 * subsample of validation voxels, at most `voxelsPerCase` per case), the
 * calibration error before and after, and a triage rule on the per-case
 * uncertainty score (infer/uncertainty.ts caseUncertainty) against the
 * case's mean foreground Dice.
 */
import { calibrationError, fitTemperature } from '../eval/calibration.ts';
import { chooseTriageRule } from '../eval/triage.ts';
import type { ModelCalibration } from '../plan/model-folder.ts';
import { caseUncertainty, type UncertaintyMaps } from './uncertainty.ts';

export class ValidationConfidence {
  private logits: number[] = [];
  private labels: number[] = [];
  private scores: number[] = [];
  private dice: number[] = [];
  private members = 0;

  constructor(
    private readonly numClasses: number,
    private readonly voxelsPerCase = 100_000,
  ) {}

  /**
   * One validation case: its members' maps (with mean logits), its predicted
   * and reference label maps on the same grid, and its mean foreground Dice.
   */
  addCase(maps: UncertaintyMaps, predicted: Uint8Array, reference: Uint8Array, meanDice: number): void {
    if (!maps.meanLogits) throw new Error('the members were predicted without logits');
    const K = this.numClasses;
    const z = maps.meanLogits.contiguous().toTypedArray() as Float32Array;
    const V = reference.length;
    if (z.length !== K * V || predicted.length !== V) throw new Error(`maps of ${z.length / K} voxels for a case of ${V}`);
    const stride = Math.max(1, Math.ceil(V / this.voxelsPerCase));
    for (let i = 0; i < V; i += stride) {
      for (let k = 0; k < K; k++) this.logits.push(z[k * V + i]!);
      this.labels.push(reference[i]!);
    }
    this.scores.push(caseUncertainty(maps, predicted, K).meanEntropy);
    this.dice.push(Number.isFinite(meanDice) ? meanDice : 1);
    this.members = maps.members;
  }

  get cases(): number {
    return this.scores.length;
  }

  /** The model's calibration; null without a case. */
  finish(o: { failureDice?: number; capture?: number } = {}): ModelCalibration | null {
    if (this.cases === 0) return null;
    const K = this.numClasses;
    const fit = fitTemperature(this.logits, this.labels, K);
    const before = calibrationError(this.logits, this.labels, K).ece;
    const after = calibrationError(this.logits, this.labels, K, { temperature: fit.temperature }).ece;
    return {
      temperature: fit.temperature,
      voxels: this.labels.length,
      ece: { before, after },
      nll: { before: fit.nllBefore, after: fit.nllAfter },
      score: 'meanEntropy',
      members: this.members,
      triage: chooseTriageRule(this.scores, this.dice, o),
    };
  }
}
