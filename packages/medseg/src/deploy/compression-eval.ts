/**
 * What a compression costs and gains, measured on a model's validation
 * cases: both ONNX models (the original fp32 export and the compressed one)
 * predict every case in onnxruntime with the plan's sliding window on the
 * preprocessed grid (no TTA), scored by Dice against the reference; the
 * result has the size on disk of each, the time of one network pass and of
 * one case, the Dice difference (compressed minus original) on average and
 * on the case that lost most, and the MLPerf-style quality gate: the
 * compressed model keeps at least 99 % and 99.9 % of the original's Dice,
 * on the mean over cases and on the worst case (the smallest per-case ratio).
 */
import type { PreprocessedCase } from '../data/types.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import type { Plan } from '../plan/types.ts';
import { OnnxNetwork } from './onnx-engine.ts';

export interface CaseDice {
  case: string;
  /** Mean Dice over the foreground classes present in the prediction or the reference. */
  original: number;
  compressed: number;
  delta: number;
}

export interface QualityGate {
  /** Fraction of the original Dice the compressed model must keep (0.99, 0.999). */
  fraction: number;
  /** Mean compressed Dice >= fraction x mean original Dice. */
  mean: boolean;
  /** Every case: compressed Dice >= fraction x its original Dice. */
  worstCase: boolean;
}

export interface CompressionEvaluation {
  cases: number;
  /** Where the Dice comes from, in words. */
  protocol: string;
  perCase: CaseDice[];
  dice: { original: { mean: number; worst: number }; compressed: { mean: number; worst: number } };
  /** Compressed minus original: the mean over cases and the most negative case. */
  deltaDice: { mean: number; worst: number; worstCase: string };
  /** Smallest per-case ratio compressed / original Dice. */
  worstRatio: number;
  gates: QualityGate[];
  /** Median milliseconds of one case on the preprocessed grid, sliding window included, per model. */
  caseMs: { original: number; compressed: number };
}

const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

/** Scores the original and compressed ONNX models on preprocessed, labelled validation cases. */
export function evaluateCompression(
  original: Uint8Array,
  compressed: Uint8Array,
  cases: PreprocessedCase[],
  plan: Plan,
  o: { threads?: number } = {},
): CompressionEvaluation {
  if (cases.length === 0) throw new Error('no validation cases to score the compression on');
  for (const c of cases) if (!c.label) throw new Error(`validation case ${c.id} has no reference label`);
  const K = plan.network.numClasses;
  const score = (bytes: Uint8Array): { dice: number[]; ms: number[] } => {
    const net = new OnnxNetwork(bytes, { threads: o.threads });
    try {
      const dice: number[] = [];
      const ms: number[] = [];
      for (const c of cases) {
        const t0 = performance.now();
        const pred = predictCaseLabels(net, c, plan.patchSize, { mirror: false, stepFraction: plan.inference.stepFraction });
        ms.push(performance.now() - t0);
        const d = diceScores(pred, c.label!, K).filter(Number.isFinite);
        dice.push(d.length ? mean(d) : 1);
      }
      return { dice, ms };
    } finally {
      net.dispose();
    }
  };
  const a = score(original);
  const b = score(compressed);
  const perCase = cases.map((c, i) => ({ case: c.id, original: a.dice[i]!, compressed: b.dice[i]!, delta: b.dice[i]! - a.dice[i]! }));
  const worst = perCase.reduce((w, c) => (c.delta < w.delta ? c : w));
  const ratios = perCase.map((c) => (c.original > 0 ? c.compressed / c.original : c.compressed >= c.original ? 1 : 0));
  const meanA = mean(a.dice);
  const meanB = mean(b.dice);
  return {
    cases: cases.length,
    protocol: `the fold's ${cases.length} validation cases, preprocessed with the plan, the plan's sliding window without TTA, both models in onnxruntime; Dice per case is the mean over the foreground classes`,
    perCase,
    dice: { original: { mean: meanA, worst: Math.min(...a.dice) }, compressed: { mean: meanB, worst: Math.min(...b.dice) } },
    deltaDice: { mean: meanB - meanA, worst: worst.delta, worstCase: worst.case },
    worstRatio: Math.min(...ratios),
    gates: [0.99, 0.999].map((fraction) => ({ fraction, mean: meanB >= fraction * meanA, worstCase: ratios.every((r) => r >= fraction) })),
    caseMs: { original: median(a.ms), compressed: median(b.ms) },
  };
}
