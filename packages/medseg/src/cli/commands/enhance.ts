/**
 * `medseg enhance train|apply`: image-to-image enhancement of MR volumes —
 * denoising (supervised on Rician noise of a known level, or Noise2Void
 * without clean targets) and through-plane super-resolution ×2 / ×4 — with
 * the zoo's U-Net predicting a residual.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { parseNonNegative, parsePositiveInt, printResult, wantsJson } from '../output.ts';

interface TrainCliOptions {
  task: 'denoise' | 'sr';
  out: string;
  noise?: number;
  selfSupervised?: boolean;
  factor?: number;
  axis: 'z' | 'y' | 'x';
  dims: '2' | '3';
  loss: 'l1' | 'mse';
  minutes?: number;
  epochs?: number;
  iterations?: number;
  batchSize?: number;
  seed: number;
  resume?: boolean;
}

function parseFactor(value: string): number {
  if (value !== '2' && value !== '4') throw new InvalidArgumentError('the through-plane factor must be 2 or 4');
  return Number(value);
}

function parseLevel(value: string): number {
  const n = parseNonNegative(value);
  if (!(n < 1)) throw new InvalidArgumentError('the noise level is a fraction of the 99th-percentile foreground intensity, in [0, 1)');
  return n;
}

function registerTrain(enhance: Command): void {
  enhance
    .command('train')
    .description('train a denoising or through-plane super-resolution model on a folder of MR images; resumable')
    .argument('<dataset>', 'dataset folder (imagesTr/ of an nnU-Net or MSD dataset, an images/ folder, or NIfTI files); the last tenth validates')
    .addOption(new Option('--task <task>', 'denoise or sr (super-resolution)').choices(['denoise', 'sr']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'model folder to create (enhance.json, weights, checkpoint, log)')
    .option(
      '--noise <level>',
      'denoising: Rician noise level as a fraction of the 99th-percentile foreground, added to the images (default 0.05; with --self-supervised default 0: the images are noisy already)',
      parseLevel,
    )
    .option('--self-supervised', 'denoising: Noise2Void blind-spot training, no clean targets')
    .option('--factor <k>', 'sr: through-plane factor, 2 or 4 (default 2)', parseFactor)
    .addOption(new Option('--axis <axis>', 'sr: the through-plane axis').choices(['z', 'y', 'x']).default('z'))
    .addOption(new Option('--dims <n>', 'a 2D (plane by plane) or 3D U-Net').choices(['2', '3']).default('2'))
    .addOption(new Option('--loss <name>', 'training loss').choices(['l1', 'mse']).default('l1'))
    .option('--minutes <m>', 'time budget: train until it is spent (the LR decay follows the clock)', parseNonNegative)
    .option('--epochs <n>', 'epochs of 50 steps without a time budget (default 50)', parsePositiveInt)
    .option('--iterations <n>', 'steps per epoch (default 50)', parsePositiveInt)
    .option('--batch-size <n>', 'patches per step (default 8)', parsePositiveInt)
    .option('--seed <n>', 'random seed', parsePositiveInt, 12345)
    .option('--resume', 'go on from the checkpoint in --out (with the settings it was started with)')
    .action(async (dataset: string, o: TrainCliOptions, cmd: Command) => {
      if (o.task === 'sr' && (o.noise !== undefined || o.selfSupervised)) throw new CliUsageError('--noise and --self-supervised are for --task denoise');
      if (o.task === 'denoise' && o.factor !== undefined) throw new CliUsageError('--factor is for --task sr');
      if (o.task === 'denoise' && !o.selfSupervised && o.noise === 0)
        throw new CliUsageError('supervised denoising needs --noise > 0 to make its noisy inputs');
      const { trainEnhanceModel } = await import('../../pipeline/enhance.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const r = await trainEnhanceModel({
        dataset,
        out: o.out,
        settings: {
          task: o.task,
          dims: Number(o.dims) as 2 | 3,
          loss: o.loss,
          axis: ({ z: 0, y: 1, x: 2 } as const)[o.axis],
          noise: o.noise ?? (o.selfSupervised ? 0 : 0.05),
          selfSupervised: Boolean(o.selfSupervised),
          ...(o.factor !== undefined ? { factor: o.factor } : {}),
        },
        training: {
          seed: o.seed,
          ...(o.minutes !== undefined ? { timeBudgetMinutes: o.minutes } : {}),
          ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
          ...(o.iterations !== undefined ? { iterationsPerEpoch: o.iterations } : {}),
          ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
        },
        resume: o.resume,
        progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
      });
      printResult(
        cmd,
        { ...r },
        () =>
          `${o.out}: ${r.settings.task}, ${r.result.epochsRun} epochs (best ${r.result.bestEpoch + 1}, validation loss ${r.result.bestScore.toFixed(5)}), stopped by ${r.result.stoppedBy}, ${r.result.minutes.toFixed(1)} min`,
      );
    });
}

function registerApply(enhance: Command): void {
  enhance
    .command('apply')
    .description('denoise an image, or turn its thick slices into thin ones, with a trained enhancement model')
    .argument('<model>', 'model folder written by `medseg enhance train`')
    .argument('<image>', 'image (NIfTI, NRRD or a DICOM series); for sr, the thick-slice image')
    .requiredOption('--out <file>', 'output image (NIfTI or NRRD, float32, the input geometry; sr: spacing / factor along the axis)')
    .action(async (model: string, image: string, o: { out: string }, cmd: Command) => {
      const { enhanceFile } = await import('../../pipeline/enhance.ts');
      const r = await enhanceFile(model, image, o.out);
      printResult(
        cmd,
        { ...r },
        () => `${r.out}: ${r.task}, ${r.size.join('x')} voxels of ${r.spacing.map((s) => s.toFixed(3)).join(' x ')} mm, ${r.seconds.toFixed(2)} s`,
      );
    });
}

export function register(program: Command): void {
  const enhance = program
    .command('enhance')
    .description('MR enhancement: train and apply denoising (supervised or Noise2Void) and through-plane super-resolution models');
  registerTrain(enhance);
  registerApply(enhance);
}
