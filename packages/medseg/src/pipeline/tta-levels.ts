/**
 * The time-Dice trade-off of each test-time augmentation level, measured on a
 * fold's validation cases after training, for the model card: the user picks
 * a level with `medseg predict --tta` knowing what it costs.
 */
import type { PreprocessedCase } from '../data/types.ts';
import type { TtaLevelRow } from '../eval/report/tta-levels-card.ts';
import { ttaSettings } from '../infer/predict.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import { ttaOptions, ttaPasses } from '../infer/sliding-window.ts';
import { TTA_LEVELS, type TtaLevel } from '../infer/tta-levels.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { Plan } from '../plan/types.ts';
import { median } from '../util/quantile.ts';

/** Cases measured at most: enough for a stable median time and a mean Dice, cheap next to training. */
export const TTA_LEVEL_CASES = 10;

export function measureTtaLevels(net: SegmentationNetwork, cases: readonly PreprocessedCase[], plan: Plan): (TtaLevelRow & { level: TtaLevel })[] {
  const chosen = cases.filter((c) => c.label).slice(0, TTA_LEVEL_CASES);
  if (chosen.length === 0) return [];
  const dims = plan.patchSize.length;
  const rows: (TtaLevelRow & { level: TtaLevel })[] = [];
  for (const level of TTA_LEVELS) {
    const tta = ttaSettings(plan.inference, level);
    const passes = ttaPasses(ttaOptions(tta, dims));
    // A level with the same passes as the one before it (3D: mirror = full) is the same prediction.
    if (rows.length > 0 && rows[rows.length - 1]!.passes === passes) {
      rows.push({ ...rows[rows.length - 1]!, level });
      continue;
    }
    const seconds: number[] = [];
    const dice: number[] = [];
    for (const c of chosen) {
      const t0 = performance.now();
      const pred = predictCaseLabels(net, c, plan.patchSize, tta);
      seconds.push((performance.now() - t0) / 1000);
      const d = diceScores(pred, c.label!, plan.network.numClasses).filter(Number.isFinite);
      if (d.length) dice.push(d.reduce((a, b) => a + b, 0) / d.length);
    }
    rows.push({
      level,
      passes,
      secondsPerCase: median(seconds),
      meanDice: dice.length ? dice.reduce((a, b) => a + b, 0) / dice.length : NaN,
      cases: chosen.length,
    });
  }
  return rows;
}
