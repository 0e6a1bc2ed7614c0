/**
 * Drift flags: one case against the model's reference, and a sliding window
 * of recent cases against the rate of flags the model is expected to raise.
 *
 * Per case (each flag with its reason):
 * - spacing: an axis' spacing below 0.8x the smallest or above 1.25x the
 *   largest training spacing (z not compared for 2D models);
 * - extent: an axis' physical size (shape x spacing) below half the smallest
 *   or above twice the largest training size;
 * - intensity: a channel's median intensity (of the predicted foreground)
 *   outside the 0.5-99.5 percentile range of the training foreground;
 * - modality: the input's modality is known and not the one the model's
 *   normalisation implies;
 * - uncertainty: the score reaches the triage threshold fitted on the
 *   validation cases.
 *
 * Window: of the last `size` cases, how many are flagged; drift when that
 * count is improbable under the expected flag rate (one-sided exact binomial
 * test, p below alpha), the expected rate being the validation cases' flagged
 * fraction when the model has one, else `expectedRate`.
 */
import type { InputFingerprint } from './input-fingerprint.ts';
import type { MonitoringReference } from './reference.ts';

export const DRIFT_CHECKS = ['spacing', 'extent', 'intensity', 'modality', 'uncertainty'] as const;
export type DriftCheck = (typeof DRIFT_CHECKS)[number];

export interface DriftFlag {
  check: DriftCheck;
  reason: string;
}

const AXES = ['z', 'y', 'x'];
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString());

/** The flags one case raises against the reference (none: in distribution as far as the reference tells). */
export function caseFlags(input: InputFingerprint, ref: MonitoringReference): DriftFlag[] {
  const flags: DriftFlag[] = [];
  const first = ref.dims === 2 ? 1 : 0;
  for (let a = first; a < 3; a++) {
    const s = ref.spacing?.[a];
    const v = input.spacing[a]!;
    if (s && (v < 0.8 * s.min || v > 1.25 * s.max)) {
      flags.push({ check: 'spacing', reason: `${AXES[a]} spacing ${fmt(v)} mm is outside the training range ${fmt(s.min)}-${fmt(s.max)} mm (x0.8-x1.25)` });
    }
  }
  for (let a = first; a < 3; a++) {
    const e = ref.extentMm?.[a];
    const v = input.shape[a]! * input.spacing[a]!;
    if (e && (v < 0.5 * e.min || v > 2 * e.max)) {
      flags.push({ check: 'extent', reason: `${AXES[a]} extent ${fmt(v)} mm is outside the training range ${fmt(e.min)}-${fmt(e.max)} mm (x0.5-x2)` });
    }
  }
  input.intensity.forEach((s, c) => {
    const r = ref.intensity?.[c];
    if (r && Number.isFinite(s.median) && (s.median < r.percentile_00_5 || s.median > r.percentile_99_5)) {
      flags.push({
        check: 'intensity',
        reason: `channel ${c} median intensity ${fmt(s.median)} (${input.intensityRegion}) is outside the training foreground's 0.5-99.5 percentile range ${fmt(r.percentile_00_5)}-${fmt(r.percentile_99_5)}`,
      });
    }
  });
  if (ref.modality && input.modality && input.modality !== ref.modality) {
    flags.push({ check: 'modality', reason: `modality ${input.modality}; the model expects ${ref.modality}` });
  }
  if (ref.validation && input.uncertainty !== null && input.uncertainty >= ref.validation.threshold) {
    flags.push({
      check: 'uncertainty',
      reason: `uncertainty ${fmt(input.uncertainty)} reaches the threshold ${fmt(ref.validation.threshold)} fitted on the validation cases`,
    });
  }
  return flags;
}

/** P(X >= k) for X ~ Binomial(n, p), summed in log space. */
export function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += Math.exp(logFactorial(n) - logFactorial(i) - logFactorial(n - i) + i * Math.log(p) + (n - i) * Math.log1p(-p));
  }
  return Math.min(1, sum);
}

const LOG_FACTORIALS: number[] = [0];
function logFactorial(m: number): number {
  for (let i = LOG_FACTORIALS.length; i <= m; i++) LOG_FACTORIALS.push(LOG_FACTORIALS[i - 1]! + Math.log(i));
  return LOG_FACTORIALS[m]!;
}

export interface WindowSummary {
  size: number;
  cases: number;
  flagged: number;
  flaggedFraction: number;
  /** Cases flagged by each check. */
  byCheck: Record<DriftCheck, number>;
  /** The flag rate a model in its own distribution is expected to show. */
  expectedRate: number;
  expectedRateFrom: 'validation' | 'setting';
  /** One-sided exact binomial p of this many flags or more under the expected rate. */
  pValue: number;
  drift: boolean;
  /** Mean uncertainty of the window's cases with a score, and the validation threshold. */
  meanUncertainty: number | null;
  /** Per channel: the window's median of case medians over the training foreground median. */
  intensityMedianRatio: number[] | null;
}

/** The summary of the most recent cases (newest first), at most `size` of them. */
export function windowSummary(
  recent: { input: InputFingerprint; flags: DriftFlag[] }[],
  ref: MonitoringReference,
  o: { size: number; expectedRate: number; alpha: number },
): WindowSummary {
  const w = recent.slice(0, o.size);
  const flagged = w.filter((c) => c.flags.length > 0).length;
  const byCheck = Object.fromEntries(DRIFT_CHECKS.map((k) => [k, w.filter((c) => c.flags.some((f) => f.check === k)).length])) as Record<DriftCheck, number>;
  const fromValidation = ref.validation !== null && ref.validation.flaggedFraction > 0;
  const expectedRate = fromValidation ? ref.validation!.flaggedFraction : o.expectedRate;
  const pValue = binomialTail(flagged, w.length, expectedRate);
  const scores = w.map((c) => c.input.uncertainty).filter((s): s is number => s !== null);
  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
  };
  const ratio = ref.intensity
    ? ref.intensity.map((r, c) => median(w.map((x) => x.input.intensity[c]?.median ?? NaN).filter(Number.isFinite)) / r.median)
    : null;
  return {
    size: o.size,
    cases: w.length,
    flagged,
    flaggedFraction: w.length ? flagged / w.length : 0,
    byCheck,
    expectedRate,
    expectedRateFrom: fromValidation ? 'validation' : 'setting',
    pValue,
    drift: w.length > 0 && pValue < o.alpha,
    meanUncertainty: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null,
    intensityMedianRatio: ratio && ratio.every(Number.isFinite) ? ratio : null,
  };
}
