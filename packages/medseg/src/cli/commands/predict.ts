/** `medseg predict <model> <input> --out <dir>`: segment a file, a folder, or a DICOM series. */
import type { Command } from 'commander';
import { parseNumberList, printResult, wantsJson } from '../output.ts';

export function register(program: Command): void {
  program
    .command('predict')
    .description('segment images with a trained model folder (sliding window, mirroring/transposing TTA, fold ensemble)')
    .argument('<model>', 'model folder written by `medseg train`')
    .argument('<input>', 'an image file, a folder of images, or a DICOM series folder')
    .option('--out <dir>', 'where to write the label maps (same format as the input; DICOM -> DICOM SEG)', 'predictions')
    .option('--no-tta', 'no test-time augmentation: one pass instead of the plan\'s mirrored (and, in 2D, transposed) passes (faster)')
    .option('--folds <list>', 'use only these folds', parseNumberList)
    .action(async (model: string, input: string, o: { out: string; tta: boolean; folds?: number[] }, cmd: Command) => {
      const { predictPath } = await import('../../pipeline/predict-folder.ts');
      const { createProgress } = await import('../../train/progress.ts');
      const r = await predictPath({ model, input, out: o.out, tta: o.tta, folds: o.folds, progress: createProgress(wantsJson(cmd) ? 'json' : 'auto') });
      printResult(cmd, r, () => r.outputs.map((x) => `${x.output}  (${x.seconds.toFixed(2)} s)`).join('\n'));
    });
}
