/** `medseg predict <model> <input> --out <dir>`: segment a file, a folder (of studies), or DICOM series. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CheckpointChoice } from '../../plan/model-folder.ts';
import { TTA_LEVELS, type TtaLevel } from '../../infer/tta-levels.ts';
import { UNCERTAINTY_SOURCES, type UncertaintySource } from '../../infer/uncertainty-sources.ts';
import { CliBadInputError, CliUsageError } from '../errors.ts';
import { parseNumberList, parsePositiveInt, printResult, wantsJson } from '../output.ts';

interface PredictCliOptions {
  out: string;
  /** --tta <level>, or false from --no-tta. */
  tta?: TtaLevel | false;
  folds?: number[];
  checkpoint?: CheckpointChoice;
  format?: 'nifti' | 'nrrd' | 'png' | 'dicom-seg' | 'rtstruct';
  saveProbabilities?: boolean;
  segmentCodes?: string;
  series?: string;
  device: 'cpu' | 'cuda';
  uncertainty?: true | UncertaintySource[];
  mcSamples?: number;
  engine: 'torch' | 'onnx' | 'onnx-int8';
  onnx?: string;
  calibration?: string;
  calibrationCases?: number;
  deidentify?: boolean;
  uidSecretFile?: string;
}

function parseSources(v: string): UncertaintySource[] {
  const list = v.split(',').map((s) => s.trim());
  for (const s of list)
    if (!UNCERTAINTY_SOURCES.includes(s as UncertaintySource)) throw new InvalidArgumentError(`expected a comma list of ${UNCERTAINTY_SOURCES.join(', ')}`);
  return list as UncertaintySource[];
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('segment images with a trained model folder (sliding window, mirroring/transposing TTA, fold ensemble)')
    .argument('<model>', 'model folder written by `medseg train`')
    .argument('<input>', 'an image file, a folder of images, a DICOM series folder, or a folder of studies (subfolders of images or DICOM series)')
    .option('--out <dir>', 'where to write the label maps (subfolders of the input are kept)', 'predictions')
    .addOption(
      new Option(
        '--format <format>',
        "format of the label maps; default: the input's own (NIfTI, NRRD; 2D images -> PNG; DICOM -> DICOM SEG); rtstruct (DICOM input): an RT Structure Set of closed planar contours",
      ).choices(['nifti', 'nrrd', 'png', 'dicom-seg', 'rtstruct']),
    )
    .option(
      '--save-probabilities',
      "also write the per-class probabilities (float32, softmax averaged over folds and TTA, on the input's grid) as <id>_probabilities with one component per class: .nrrd for NRRD output, otherwise .nii.gz (for 2D/PNG input a NIfTI of one slice with K components; with DICOM SEG output a FRACTIONAL SEG <id>_probabilities.seg.dcm of the foreground classes)",
    )
    .option(
      '--segment-codes <file.json>',
      'codes and names of the segments in DICOM SEG / RTSTRUCT output: {"<label value or name>": {"category": {"value", "scheme", "meaning"}, "type": {...}, "modifier"?: {...}}} or a dcmqi meta JSON; labels it does not name get the default SNOMED CT mapping from their dataset.json names',
    )
    .addOption(
      new Option(
        '--checkpoint <which>',
        "weights of each fold: best (best validation epoch), final (last epoch) or averaged (the last epochs' mean, plans with --average-weights); default best, else final",
      ).choices(['best', 'final', 'averaged']),
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
    .option(
      '--uncertainty [sources]',
      `also write <id>_entropy and <id>_mutual_information maps (normalised to 0..1, on the input's grid) and <id>_uncertainty.json (the case's score and, when the model has a triage rule, whether to review it); members from ${UNCERTAINTY_SOURCES.join(', ')} (default: ensemble,tta; the probabilities are then the members' mean)`,
      parseSources,
    )
    .option('--mc-samples <n>', 'dropout samples per fold and TTA pass with --uncertainty mc-dropout (default 8)', parsePositiveInt)
    .addOption(
      new Option(
        '--engine <engine>',
        'network passes on libtorch, on onnxruntime (each fold exported to ONNX in memory first; CPU only), or on onnxruntime with a static int8 model (with --calibration or --onnx)',
      )
        .choices(['torch', 'onnx', 'onnx-int8'])
        .default('torch'),
    )
    .option(
      '--onnx <file>',
      'with --engine onnx or onnx-int8: run this model (written by `medseg compress` or `medseg export`) as the network of the fold it was made from',
    )
    .option(
      '--calibration <dataset>',
      "with --engine onnx-int8: quantize each fold in memory, activations calibrated on this dataset's training cases (as `medseg compress --int8`)",
    )
    .option('--calibration-cases <n>', 'training cases to calibrate on with --calibration (default 8)', parsePositiveInt)
    .option(
      '--deidentify',
      'de-identify the DICOM SEG / RTSTRUCT results (PS3.15 Basic Profile, as `medseg deidentify` with its defaults): patient name and ID replaced, dates removed, UIDs remapped consistently across the run',
    )
    .option(
      '--uid-secret-file <file>',
      'with --deidentify: derive the new UIDs from the secret in this file, so the results reference the series as `medseg deidentify --uid-secret-file` with the same secret writes it',
    )
    .addOption(
      new Option(
        '--tta <level>',
        "test-time augmentation: none (one pass), axis-flips (the identity and each spatial axis mirrored alone: 1 + d passes), mirror (every combination of mirrored axes: 2^d passes), full (the plan's: mirrored and, for 2D plans trained with transposition, transposed; the default). The model card lists each level's seconds per case and Dice",
      ).choices(TTA_LEVELS),
    )
    .option('--no-tta', 'the same as --tta none')
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
  medseg predict model/ study/ --format rtstruct --out rt/                       (DICOM in, RTSTRUCT out)
  medseg predict model/ study/ --deidentify --uid-secret-file key.txt --out seg/ (UIDs as medseg deidentify --uid-secret-file key.txt gives)
  medseg predict model/ case.nii.gz --save-probabilities --checkpoint final
  medseg predict model/ imagesTs/ --uncertainty --out predictions/      (flags cases to review)
  medseg predict hybrid-model/ case.nii.gz --uncertainty mc-dropout,tta --mc-samples 4
  medseg predict model/ imagesTs/ --engine onnx-int8 --onnx hippocampus-int8.onnx      (a compressed fold)`,
    )
    .action(async (model: string, input: string, o: PredictCliOptions, cmd: Command) => {
      const { predictPath, PredictionFailures } = await import('../../pipeline/predict-folder.ts');
      const { PredictOptionError } = await import('../../infer/output-format.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const json = wantsJson(cmd);
      const list = (outputs: { output: string; probabilities?: string; uncertainty?: string; flagged?: boolean | null; seconds: number }[]) =>
        outputs
          .map(
            (x) =>
              `${x.output}${x.probabilities ? `  ${x.probabilities}` : ''}${x.uncertainty ? `  ${x.uncertainty}${x.flagged ? '  REVIEW' : ''}` : ''}  (${x.seconds.toFixed(2)} s)`,
          )
          .join('\n');
      if (o.mcSamples !== undefined && !(Array.isArray(o.uncertainty) && o.uncertainty.includes('mc-dropout')))
        throw new CliUsageError('--mc-samples goes with --uncertainty mc-dropout');
      if (o.uidSecretFile !== undefined && !o.deidentify) throw new CliUsageError('--uid-secret-file goes with --deidentify');
      let uidSecret: string | undefined;
      if (o.uidSecretFile !== undefined) {
        const { readFile } = await import('node:fs/promises');
        uidSecret = (
          await readFile(o.uidSecretFile, 'utf8').catch(() => {
            throw new CliUsageError(`cannot read --uid-secret-file ${o.uidSecretFile}`);
          })
        ).trim();
        if (!uidSecret) throw new CliUsageError(`--uid-secret-file ${o.uidSecretFile} is empty`);
      }
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
          segmentCodes: o.segmentCodes,
          uncertainty: o.uncertainty ? { sources: o.uncertainty === true ? undefined : o.uncertainty, mcSamples: o.mcSamples } : undefined,
          series: o.series,
          device: o.device,
          engine: o.engine,
          onnx: o.onnx,
          calibration: o.calibration ? { dataset: o.calibration, cases: o.calibrationCases } : undefined,
          progress: createProgress(json ? 'json' : 'auto'),
          deidentify: o.deidentify ? (uidSecret !== undefined ? { uidSecret } : {}) : undefined,
        });
        printResult(cmd, r, () => list(r.outputs));
      } catch (e) {
        if (e instanceof PredictOptionError) throw new CliUsageError(e.message);
        if (o.engine === 'onnx-int8') {
          const { QuantizeError } = await import('../../deploy/quantize.ts');
          if (e instanceof QuantizeError) throw new CliBadInputError(e.message);
        }
        // The cases that did succeed are listed before the failures (stdout stays one JSON object with --json).
        if (e instanceof PredictionFailures && !json && e.outputs.length) process.stdout.write(`${list(e.outputs)}\n`);
        throw e;
      }
    });
}
