/** `medseg predict <model> <input> --out <dir>`: segment a file, a folder (of studies), or DICOM series. */
import { Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { parseNumberList, printResult, wantsJson } from '../output.ts';

interface PredictCliOptions {
  out: string;
  tta: boolean;
  folds?: number[];
  checkpoint?: 'best' | 'final';
  format?: 'nifti' | 'nrrd' | 'png' | 'dicom-seg';
  saveProbabilities?: boolean;
  series?: string;
  device: 'cpu' | 'cuda';
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('segment images with a trained model folder (sliding window, mirroring/transposing TTA, fold ensemble)')
    .argument('<model>', 'model folder written by `medseg train`')
    .argument('<input>', 'an image file, a folder of images, a DICOM series folder, or a folder of studies (subfolders of images or DICOM series)')
    .option('--out <dir>', 'where to write the label maps (subfolders of the input are kept)', 'predictions')
    .addOption(
      new Option('--format <format>', "format of the label maps; default: the input's own (NIfTI, NRRD; 2D images -> PNG; DICOM -> DICOM SEG)").choices([
        'nifti',
        'nrrd',
        'png',
        'dicom-seg',
      ]),
    )
    .option(
      '--save-probabilities',
      "also write the per-class probabilities (float32, softmax averaged over folds and TTA, on the input's grid) as <id>_probabilities with one component per class: .nrrd for NRRD output, otherwise .nii.gz (for 2D/PNG input a NIfTI of one slice with K components; for DICOM input a NIfTI on the series' grid)",
    )
    .addOption(
      new Option('--checkpoint <which>', 'weights of each fold: best (best validation epoch) or final (last epoch); default best, else final').choices([
        'best',
        'final',
      ]),
    )
    .option(
      '--series <uid>',
      'the SeriesInstanceUID to predict where a DICOM folder holds several series (without it every image series is predicted, each named <folder>_<SeriesInstanceUID>)',
    )
    .addOption(
      new Option('--device <device>', 'compute device; cuda needs a CUDA-enabled libtorch (LIBTORCH=/path/to/libtorch npm run build:native)')
        .choices(['cpu', 'cuda'])
        .default('cpu'),
    )
    .option('--no-tta', "no test-time augmentation: one pass instead of the plan's mirrored (and, in 2D, transposed) passes (faster)")
    .option('--folds <list>', 'use only these folds', parseNumberList)
    .addHelpText(
      'after',
      `
Cases: every image file under <input> (for several channels the _0000 file stands for _0000.._000N),
and every DICOM image series (SEG, SR, RTSTRUCT and other non-image series are skipped).
A case that cannot be read or predicted is reported and the others are still predicted; the
command then exits with code 2 and lists the failed cases. Progress shows the tiles done of each
case with an ETA.

Examples:
  medseg predict model/ imagesTs/ --out predictions/
  medseg predict model/ study/ --series 1.2.840.113619.2.5.1 --out seg/        (DICOM in, DICOM SEG out)
  medseg predict model/ case.nii.gz --save-probabilities --checkpoint final`,
    )
    .action(async (model: string, input: string, o: PredictCliOptions, cmd: Command) => {
      const { predictPath, PredictionFailures } = await import('../../pipeline/predict-folder.ts');
      const { PredictOptionError } = await import('../../infer/output-format.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const json = wantsJson(cmd);
      const list = (outputs: { output: string; probabilities?: string; seconds: number }[]) =>
        outputs.map((x) => `${x.output}${x.probabilities ? `  ${x.probabilities}` : ''}  (${x.seconds.toFixed(2)} s)`).join('\n');
      try {
        const r = await predictPath({
          model,
          input,
          out: o.out,
          tta: o.tta,
          folds: o.folds,
          checkpoint: o.checkpoint,
          format: o.format,
          saveProbabilities: o.saveProbabilities,
          series: o.series,
          device: o.device,
          progress: createProgress(json ? 'json' : 'auto'),
        });
        printResult(cmd, r, () => list(r.outputs));
      } catch (e) {
        if (e instanceof PredictOptionError) throw new CliUsageError(e.message);
        // The cases that did succeed are listed before the failures (stdout stays one JSON object with --json).
        if (e instanceof PredictionFailures && !json && e.outputs.length) process.stdout.write(`${list(e.outputs)}\n`);
        throw e;
      }
    });
}
