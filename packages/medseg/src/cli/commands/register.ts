/**
 * `medseg register <fixed> <moving> --out <dir>`: affine + deformable
 * registration, writing the warped image, the field and warped labels; and
 * `medseg register-train <dataset> --out <dir>`: the registration network
 * that `register --model` uses.
 */
import { Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { parseNonNegative, parsePositive, parsePositiveInt, printResult, wantsJson } from '../output.ts';

interface RegisterCliOptions {
  out: string;
  movingLabels?: string;
  affineOnly?: boolean;
  model?: string;
  similarity: 'lncc' | 'mi' | 'ncc';
  affineSimilarity: 'ncc' | 'mi';
  diffeomorphic?: boolean;
  iterations?: number;
  smoothness?: number;
}

interface RegisterTrainCliOptions {
  out: string;
  atlas?: string;
  pairs?: number;
  minutes: number;
  supervised?: boolean;
  diffeomorphic?: boolean;
  similarity: 'lncc' | 'mi' | 'ncc';
  smoothness?: number;
  seed: number;
  checkpointSeconds: number;
  resume?: boolean;
}

export function register(program: Command): void {
  registerPairCommand(program);
  registerTrainCommand(program);
}

function registerTrainCommand(program: Command): void {
  program
    .command('register-train')
    .description('train the registration network (affine first, then a U-Net predicting the deformable field) on pairs of a dataset')
    .argument('<dataset>', 'dataset folder (dataset.json, imagesTr/, labelsTr/): one channel')
    .requiredOption('--out <dir>', 'model folder (registration.json, weights.safetensors, training.json), for `register --model`')
    .option('--atlas <id>', 'register every other training case to this one (atlas-based); default: random pairs of cases')
    .option('--pairs <n>', 'number of pairs (default: every subject with --atlas, else up to 100 random pairs)', parsePositiveInt)
    .option('--minutes <m>', 'time budget', parsePositive, 5)
    .option('--supervised', 'also train on the Dice of the warped labels (needs the label files)')
    .option('--diffeomorphic', 'predict a velocity field integrated by scaling and squaring (7 steps)')
    .addOption(
      new Option('--similarity <name>', 'similarity loss: local NCC (window 9), mutual information or global NCC')
        .choices(['lncc', 'mi', 'ncc'])
        .default('lncc'),
    )
    .option('--smoothness <weight>', 'weight of the diffusion penalty (default 1)', parseNonNegative)
    .option('--seed <n>', 'random seed (pairs and their order)', parsePositiveInt, 1)
    .option('--checkpoint-seconds <s>', 'rewrite the model folder this often while training', parsePositive, 60)
    .option('--resume', 'go on from the checkpoint in --out with the rest of its budget')
    .action(async (dataset: string, o: RegisterTrainCliOptions, cmd: Command) => {
      if (o.resume && (o.atlas !== undefined || o.pairs !== undefined))
        throw new CliUsageError('--resume keeps the settings the run started with: leave out --atlas and --pairs');
      const { datasetPairs, trainRegistrationFiles } = await import('../../registration/train-files.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const r = await trainRegistrationFiles(datasetPairs(dataset, { atlas: o.atlas, pairs: o.pairs, seed: o.seed }), {
        out: o.out,
        seconds: o.minutes * 60,
        supervised: o.supervised,
        settings: {
          similarity: o.similarity,
          diffeomorphic: Boolean(o.diffeomorphic),
          ...(o.smoothness !== undefined ? { smoothness: o.smoothness } : {}),
        },
        seed: o.seed,
        checkpointSeconds: o.checkpointSeconds,
        resume: o.resume,
        progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
      });
      printResult(cmd, { ...r }, () => `${r.dir}: ${r.pairs} pairs, ${r.steps} steps in ${r.seconds.toFixed(0)} s, loss ${r.loss.toFixed(4)}`);
    });
}

function registerPairCommand(program: Command): void {
  program
    .command('register')
    .description('register a moving image to a fixed one (affine, then deformable) and warp its labels')
    .argument('<fixed>', 'fixed image (NIfTI, NRRD or a DICOM series): the output geometry')
    .argument('<moving>', 'moving image, warped onto the fixed one')
    .requiredOption('--out <dir>', 'output folder')
    .option('--moving-labels <file>', "the moving image's label map, warped with nearest neighbour")
    .option('--affine-only', 'stop after the affine stage')
    .option('--model <dir>', 'a trained registration model folder: it predicts the deformable field instead of per-pair optimisation')
    .addOption(
      new Option('--similarity <name>', 'deformable similarity: local NCC (window 9), mutual information or global NCC')
        .choices(['lncc', 'mi', 'ncc'])
        .default('lncc'),
    )
    .addOption(new Option('--affine-similarity <name>', 'affine similarity').choices(['ncc', 'mi']).default('ncc'))
    .option('--diffeomorphic', 'optimise a velocity field integrated by scaling and squaring (7 steps)')
    .option('--iterations <n>', 'deformable optimisation steps (default 150)', parsePositiveInt)
    .option('--smoothness <weight>', 'weight of the diffusion penalty (default 1)', parseNonNegative)
    .addHelpText(
      'after',
      `
Writes, in the fixed image's geometry: warped.nii.gz (the moving image),
field.nii.gz (the displacement, NIfTI vector intent: at each fixed voxel the
vector in LPS mm to the moving point it samples, ITK's convention),
warped-labels.nii.gz (with --moving-labels) and registration.json (the affine,
the fraction of folding voxels, timings).`,
    )
    .action(async (fixed: string, moving: string, o: RegisterCliOptions, cmd: Command) => {
      if (o.affineOnly && o.model) throw new CliUsageError('--affine-only and --model contradict each other');
      const { registerFiles } = await import('../../registration/register-files.ts');
      const r = await registerFiles(fixed, moving, o.out, {
        movingLabels: o.movingLabels,
        affineOnly: o.affineOnly,
        model: o.model,
        affine: { similarity: o.affineSimilarity },
        deformable: {
          similarity: o.similarity,
          diffeomorphic: o.diffeomorphic,
          ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
          ...(o.smoothness !== undefined ? { smoothness: o.smoothness } : {}),
        },
      });
      printResult(
        cmd,
        { ...r },
        () =>
          `registered ${moving} to ${fixed} (${r.method}) in ${(r.seconds.affine + r.seconds.deformable).toFixed(1)} s: folding ${(100 * r.foldingFraction).toFixed(3)}% of voxels\nwrote ${[r.warpedImage, r.field, r.warpedLabels, r.summary].filter(Boolean).join(', ')}`,
      );
    });
}
