/**
 * What each test-time augmentation level costs and buys on a trained model:
 * every held-out case predicted end to end (`predictPath`, reading and
 * writing included) at each `--tta` level, scored per case, and compared
 * with the default level 'full' of the same run (paired Wilcoxon on the
 * per-case mean Dice, bootstrap CI of the difference, seconds per case).
 *
 *   npm run bench -- tta-levels [--model <dir> --images <dir> --labels <dir>] [--label-values 1,2]
 *
 * Defaults: the comparison study's hippocampus U-Net (15 minutes) and its 34
 * staged validation cases, so run
 * `npm run study -- --minutes 15 --datasets hippocampus --architectures unet` first.
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluateFolder } from '../packages/medseg/src/eval/evaluate-folder.ts';
import { metricValue, type MetricRow } from '../packages/medseg/src/eval/statistics/rows.ts';
import { bootstrapMeanCI, mean } from '../packages/medseg/src/eval/statistics/summary.ts';
import { wilcoxonSignedRank } from '../packages/medseg/src/eval/statistics/wilcoxon.ts';
import { TTA_LEVELS, type TtaLevel } from '../packages/medseg/src/infer/tta-levels.ts';
import { predictPath } from '../packages/medseg/src/pipeline/predict-folder.ts';
import { repoRoot } from '../packages/medseg/src/testing/data.ts';
import { median, round } from './lib/stats.ts';
import { takeTag, writeResult } from './lib/report.ts';

/** Mean Dice over the labels of each case. */
function caseDice(rows: readonly MetricRow[]): Map<string, number> {
  const byCase = new Map<string, number[]>();
  for (const r of rows) {
    const d = metricValue(r, 'dice');
    if (d !== undefined && Number.isFinite(d)) byCase.set(r.case, [...(byCase.get(r.case) ?? []), d]);
  }
  return new Map([...byCase].map(([id, v]) => [id, mean(v)]));
}

export async function main(argv: string[]): Promise<void> {
  const { tag, rest } = takeTag(argv);
  const study = join(repoRoot, 'runs/study/hippocampus-unet-15min');
  const { values } = parseArgs({
    args: rest,
    options: {
      model: { type: 'string', default: join(study, 'model') },
      images: { type: 'string', default: join(study, 'validation/images') },
      labels: { type: 'string', default: join(study, 'validation/labels') },
      'label-values': { type: 'string', default: '1,2' },
      out: { type: 'string', default: join(repoRoot, 'runs/bench-tta-levels') },
    },
  });
  for (const [what, dir] of [
    ['model', values.model!],
    ['images', values.images!],
    ['labels', values.labels!],
  ] as const) {
    if (!existsSync(dir))
      throw new Error(
        `tta-levels: no ${what} at ${dir}; train the default with \`npm run study -- --minutes 15 --datasets hippocampus --architectures unet\` or pass --model, --images and --labels`,
      );
  }
  const labels = values['label-values']!.split(',').map(Number);
  const loadBefore = loadavg();
  const levels: { level: TtaLevel; secondsPerCase: number; seconds: number[]; dice: Map<string, number> }[] = [];
  for (const level of TTA_LEVELS) {
    const predDir = join(values.out!, level);
    const pred = await predictPath({ model: values.model!, input: values.images!, out: predDir, tta: level });
    const ev = await evaluateFolder({ predictions: predDir, references: values.labels!, labels, model: level });
    const seconds = pred.outputs.map((o) => o.seconds);
    const dice = caseDice(ev.rows);
    levels.push({ level, secondsPerCase: median(seconds), seconds, dice });
    console.log(`${level}: ${median(seconds).toFixed(3)} s per case, mean Dice ${mean([...dice.values()]).toFixed(4)}`);
  }
  const full = levels.find((l) => l.level === 'full')!;
  const rows = levels.map((l) => {
    const ids = [...full.dice.keys()].filter((id) => l.dice.has(id));
    const diff = ids.map((id) => l.dice.get(id)! - full.dice.get(id)!);
    const differs = diff.some((d) => d !== 0);
    const test = differs ? wilcoxonSignedRank(diff) : null;
    return {
      level: l.level,
      cases: ids.length,
      meanDice: round(mean([...l.dice.values()]), 4),
      diceVsFull: round(mean(diff), 4),
      diceVsFullCi95: differs ? bootstrapMeanCI(diff) : null,
      wilcoxonP: test ? Number(test.pValue.toPrecision(2)) : null,
      secondsPerCase: round(l.secondsPerCase, 3),
      timeRatioVsFull: round(l.secondsPerCase / full.secondsPerCase, 3),
      secondsPerCaseAll: l.seconds.map((s) => round(s, 3)),
      dicePerCase: Object.fromEntries([...l.dice].map(([id, d]) => [id, round(d, 5)])),
    };
  });
  console.table(rows.map(({ secondsPerCaseAll: _, diceVsFullCi95: __, dicePerCase: ___, ...r }) => r));
  const path = writeResult(
    'tta-levels',
    argv,
    {
      model: values.model,
      peer: "the default level 'full' (the plan's TTA) on the same cases in the same run",
      note: 'seconds per case are end to end (read, preprocess, sliding window with the level, revert, write), median over the cases',
      levels: rows,
      loadavgAfter: loadavg(),
    },
    loadBefore,
    tag,
  );
  console.log(`wrote ${path}`);
}
