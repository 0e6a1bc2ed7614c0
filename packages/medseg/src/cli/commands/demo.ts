/** `medseg demo`: the README's main job — plan, train, predict, evaluate, report on a default dataset. */
import type { Command } from 'commander';
import { DEMO_MINUTES } from '../../pipeline/planning-choices.ts';
import { parseNonNegative, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the whole chain on MSD hippocampus (or a generated phantom dataset) with a short budget')
    .option('--out <dir>', 'where to put the model, predictions, metrics and report (default runs/demo)')
    .option('--minutes <n>', `training budget in minutes (default ${DEMO_MINUTES})`, parseNonNegative)
    .action(async (o: { out?: string; minutes?: number }, cmd: Command) => {
      const { runDemo } = await import('../../pipeline/demo.ts');
      const r = await runDemo({ out: o.out, minutes: o.minutes });
      printResult(cmd, { ...r }, () =>
        [
          `dataset:     ${r.dataset}`,
          `model:       ${r.modelDir}  (plan.json, fold_0/, model-card.md)`,
          `predictions: ${r.predictions}`,
          `mean Dice:   ${Object.entries(r.evaluation.meanDice)
            .map(([l, d]) => `label ${l}: ${d.toFixed(4)}`)
            .join(', ')}`,
          `report:      ${r.report}`,
        ].join('\n'),
      );
    });
}
