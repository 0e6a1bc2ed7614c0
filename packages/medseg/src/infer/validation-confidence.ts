/**
 * What the validation cases say about a model's confidence, in two passes
 * over them during the final cross-validation:
 *
 * 1. addCase, with each case's members at temperature 1: a uniform subsample
 *    of its logits (at most `voxelsPerCase`) and its mean foreground Dice.
 *    fitTemperature then fits the temperature on every case's subsample.
 * 2. scoreCase, with each case's members again, now at that temperature: its
 *    triage score (infer/uncertainty.ts triageScore), the same number
 *    prediction computes for the case with the calibrated model.
 *
 * finish gives the calibration error before and after scaling and the
 * triage rule on the scores of pass 2 against the Dice of pass 1.
 */
import { calibrationError, fitTemperature, type TemperatureFit } from '../eval/calibration.ts';
import { chooseTriageRule } from '../eval/triage.ts';
import type { ModelCalibration, ValidationCaseConfidence } from '../plan/model-folder.ts';
import { triageScore, type UncertaintyMaps, type UncertaintySource } from './uncertainty.ts';

export class ValidationConfidence {
  private logits: number[] = [];
  private labels: number[] = [];
  private readonly cases = new Map<string, { fold: number; dice: number; score: number | null }>();
  private fit: TemperatureFit | null = null;
  private members: number | null = null;

  /**
   * @param sources Where each network's members come from (infer/predict-case.ts validationSources).
   */
  constructor(
    private readonly numClasses: number,
    private readonly sources: UncertaintySource[],
    private readonly voxelsPerCase = 100_000,
  ) {}

  /**
   * Pass 1, one validation case: its members' maps (with mean logits, at
   * temperature 1), its reference label map on the same grid, and its mean
   * foreground Dice (NaN when no class is present in either: it counts as a success).
   */
  addCase(id: string, fold: number, maps: UncertaintyMaps, reference: Uint8Array, meanDice: number): void {
    if (this.fit) throw new Error('the temperature is already fitted: add every case first');
    if (this.cases.has(id)) throw new Error(`validation case ${id} was added twice`);
    if (!maps.meanLogits) throw new Error('the members were predicted without logits');
    const K = this.numClasses;
    const z = maps.meanLogits.contiguous().toTypedArray() as Float32Array;
    const V = reference.length;
    if (z.length !== K * V) throw new Error(`maps of ${z.length / K} voxels for a case of ${V}`);
    const stride = Math.max(1, Math.ceil(V / this.voxelsPerCase));
    for (let i = 0; i < V; i += stride) {
      for (let k = 0; k < K; k++) this.logits.push(z[k * V + i]!);
      this.labels.push(reference[i]!);
    }
    this.cases.set(id, { fold, dice: Number.isFinite(meanDice) ? meanDice : 1, score: null });
  }

  get caseCount(): number {
    return this.cases.size;
  }

  /** The temperature fitted on the cases of pass 1 (fitted on the first call). */
  fitTemperature(): TemperatureFit {
    if (this.cases.size === 0) throw new Error('no validation case to fit a temperature on');
    this.fit ??= fitTemperature(this.logits, this.labels, this.numClasses);
    return this.fit;
  }

  /** Pass 2: the case's members predicted at fitTemperature()'s temperature. */
  scoreCase(id: string, maps: UncertaintyMaps): void {
    if (!this.fit) throw new Error('fit the temperature before scoring the cases');
    const c = this.cases.get(id);
    if (!c) throw new Error(`validation case ${id} was not added in the first pass`);
    if (this.members !== null && maps.members !== this.members) throw new Error(`case ${id} has ${maps.members} members, the cases before it ${this.members}`);
    this.members = maps.members;
    c.score = triageScore(maps, this.numClasses).meanEntropy;
  }

  /** The model's calibration; null without a case. */
  finish(o: { failureDice?: number; capture?: number } = {}): ModelCalibration | null {
    if (this.cases.size === 0) return null;
    const K = this.numClasses;
    const fit = this.fitTemperature();
    const unscored = [...this.cases].filter(([, c]) => c.score === null).map(([id]) => id);
    if (unscored.length) throw new Error(`validation case(s) ${unscored.join(', ')} have no triage score (pass 2)`);
    const cases: ValidationCaseConfidence[] = [...this.cases].map(([id, c]) => ({ id, fold: c.fold, dice: c.dice, score: c.score! }));
    const before = calibrationError(this.logits, this.labels, K).ece;
    const after = calibrationError(this.logits, this.labels, K, { temperature: fit.temperature }).ece;
    return {
      temperature: fit.temperature,
      voxels: this.labels.length,
      ece: { before, after },
      nll: { before: fit.nllBefore, after: fit.nllAfter },
      score: 'meanEntropy',
      members: this.members!,
      sources: this.sources,
      triage: chooseTriageRule(
        cases.map((c) => c.score),
        cases.map((c) => c.dice),
        o,
      ),
      cases,
    };
  }
}
