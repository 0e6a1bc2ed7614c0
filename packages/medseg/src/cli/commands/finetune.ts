/** `medseg finetune <model> --corrections <dir> --dataset <dataset> --out <dir>`: a new model version trained further on corrected segmentations. */
import type { Command } from 'commander';
import { parsePositive, parsePositiveInt, printResult, wantsJson } from '../output.ts';

interface FineTuneCliOptions {
  corrections: string;
  dataset: string;
  out: string;
  minutes: number;
  lrScale: number;
  seed: number;
}

export function register(program: Command): void {
  program
    .command('finetune')
    .description('train a model further on corrected segmentations (from the viewer or any label files): a new model folder with the Dice change in its card')
    .argument('<model>', 'model folder to start from (left unchanged)')
    .requiredOption('--corrections <dir>', 'folder with images/ and labels/: each corrected label file named as its image')
    .requiredOption(
      '--dataset <dir>',
      'the dataset the model was trained on: its folds train on their training cases too and are scored on their validation cases',
    )
    .requiredOption('--out <dir>', 'the new model folder (must not exist)')
    .option('--minutes <m>', 'time budget over all folds', parsePositive, 5)
    .option('--lr-scale <x>', "learning rate relative to the plan's", parsePositive, 0.1)
    .option('--seed <n>', 'random seed', parsePositiveInt, 12345)
    .addHelpText(
      'after',
      `
Each fold continues from its weights on its training cases plus the corrected
cases (drawn about as often as all the others together); a corrected case
replaces its original label, and leaves the validation cases if it was one.
The new folder holds finetune.json (the corrections with their SHA-256, the
model it came from, the validation Dice before and after per fold) and a model
card with a "Fine-tuned on corrections" section.`,
    )
    .action(async (model: string, o: FineTuneCliOptions, cmd: Command) => {
      const { fineTuneOnCorrections } = await import('../../pipeline/finetune-corrections.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const r = await fineTuneOnCorrections({
        model,
        corrections: o.corrections,
        dataset: o.dataset,
        out: o.out,
        minutes: o.minutes,
        lrScale: o.lrScale,
        seed: o.seed,
        progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
      });
      printResult(cmd, { out: r.out, ...r.record }, () =>
        [
          `${r.out}: fine-tuned on ${r.record.corrections.length} corrected case(s)`,
          ...r.record.folds.map(
            (f) =>
              `fold ${f.fold}: validation Dice ${f.validationDiceBefore.toFixed(4)} -> ${f.validationDiceAfter.toFixed(4)} (${f.validationCases} cases, ${f.epochs} epochs)`,
          ),
        ].join('\n'),
      );
    });
}
