/**
 * `medseg classify train|predict|explain`: image-level classifiers (ResNet-18
 * layout, HybridNet encoder, ViT) trained on a MedMNIST-style .npz, their
 * class probabilities as CSV, and Grad-CAM heat maps as PNG.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseNonNegative, printResult, wantsJson } from '../output.ts';

function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

function parseClassIndex(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a class index >= 0');
  return n;
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return n;
}

interface TrainCliOptions {
  out: string;
  arch: string;
  minutes?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  width?: number;
  labelSmoothing?: number;
  balanced: boolean;
  augment: boolean;
  hflip: boolean;
  patience?: number;
  targetSensitivity?: number;
  seed: number;
  limit?: number;
  resume?: boolean;
  init?: string;
  initFrom: 'medseg' | 'nnunet';
  initPart: 'all' | 'encoder';
}

interface PredictCliOptions {
  out: string;
  split: 'train' | 'val' | 'test';
  limit?: number;
  gradcam?: string;
}

interface ExplainCliOptions {
  out: string;
  split: 'train' | 'val' | 'test';
  limit?: number;
  class?: number;
  layer?: string;
  plusPlus?: boolean;
}

const splitOption = () => new Option('--split <name>', 'the .npz split to read').choices(['train', 'val', 'test']).default('test');

function registerTrain(classify: Command): void {
  classify
    .command('train')
    .description('train a classifier on an .npz with train/val/test splits (MedMNIST layout); resumable')
    .argument('<data>', '.npz with <split>_images (uint8 [N, H, W] or [N, D, H, W]) and <split>_labels')
    .requiredOption('--out <dir>', 'classifier folder to create (classifier.json, weights, log)')
    .option('--arch <name>', 'resnet18, hybridnet or vit', 'resnet18')
    .option('--minutes <m>', 'time budget: train until it is spent (the LR decay follows the clock)', parseNonNegative)
    .option('--epochs <n>', 'epochs without a time budget (default 100)', parsePositiveInteger)
    .option('--batch-size <n>', 'images per step (default 128)', parsePositiveInteger)
    .option('--lr <rate>', 'AdamW learning rate (default 1e-3, 5e-4 for vit; cosine decay)', parseNonNegative)
    .option('--width <n>', "channels of the first stage (ResNet, HybridNet) or the ViT's token width", parsePositiveInteger)
    .option('--label-smoothing <f>', 'cross-entropy label smoothing (default 0.1)', parseNonNegative)
    .option('--no-balanced', 'draw cases uniformly instead of each class equally often')
    .option('--no-augment', 'no augmentation')
    .option('--no-hflip', 'no horizontal flips in augmentation (vertical flips are never used)')
    .option('--patience <n>', 'early stopping: epochs without a better validation AUC (default never)', parsePositiveInteger)
    .option('--target-sensitivity <f>', "binary: choose the threshold on val for this sensitivity (default: Youden's point)", parseFraction)
    .option('--seed <n>', 'random seed', (v: string) => Number(v), 0)
    .option('--limit <n>', 'use only this many cases of each split, balanced between classes (smoke runs)', parsePositiveInteger)
    .option('--resume', 'continue from the last checkpoint of an interrupted run')
    .option(
      '--init <model|file>',
      "transfer learning: start from a medseg model folder or .safetensors (e.g. a segmentation HybridNet's encoder for --arch hybridnet)",
    )
    .addOption(
      new Option('--init-from <naming>', "the weights' names: medseg, or nnunet (the encoder of an nnU-Net PlainConvUNet, for --arch hybridnet)")
        .choices(['medseg', 'nnunet'])
        .default('medseg'),
    )
    .addOption(new Option('--init-part <part>', 'copy all fitting weights or only the encoder').choices(['all', 'encoder']).default('encoder'))
    .action(async (data: string, o: TrainCliOptions, cmd: Command) => {
      const { trainClassifierFromNpz } = await import('../../pipeline/classify.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const r = await trainClassifierFromNpz({
        data,
        outDir: o.out,
        architecture: o.arch,
        minutes: o.minutes,
        epochs: o.epochs,
        batchSize: o.batchSize,
        lr: o.lr,
        width: o.width,
        labelSmoothing: o.labelSmoothing,
        balanced: o.balanced,
        augment: o.augment,
        horizontalFlip: o.hflip,
        earlyStoppingPatience: o.patience,
        operatingPoint: o.targetSensitivity ? { kind: 'sensitivity', target: o.targetSensitivity } : undefined,
        seed: o.seed,
        limit: o.limit,
        resume: o.resume,
        init: o.init ? { source: o.init, from: o.initFrom, part: o.initPart } : undefined,
        progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
      });
      printResult(cmd, { out: o.out, ...r }, () => {
        const row = (name: string, m: typeof r.metrics.val) =>
          `${name.padEnd(5)} ACC ${m.accuracy.toFixed(4)}  AUC ${m.auc.toFixed(4)}  balanced ACC ${m.balancedAccuracy.toFixed(4)}` +
          (m.operatingPoint ? `  sensitivity ${m.operatingPoint.sensitivity.toFixed(4)}  specificity ${m.operatingPoint.specificity.toFixed(4)}` : '') +
          `  ECE ${m.ece.toFixed(4)} -> ${m.eceScaled.toFixed(4)} (T ${r.temperature.toFixed(3)})`;
        return [
          r.init ? `initialised from ${r.init.file}: ${r.init.loaded} tensors copied (${r.init.part}), ${r.init.untouched} left as initialised` : '',
          `${o.out}: ${r.config.architecture}, ${r.result.epochsRun} epochs (best ${r.result.bestEpoch + 1}), stopped by ${r.result.stoppedBy}, ${r.result.minutes.toFixed(1)} min`,
          r.threshold !== undefined
            ? `threshold ${r.threshold.toFixed(4)} (${r.operatingPoint?.kind === 'sensitivity' ? `sensitivity >= ${r.operatingPoint.target}` : 'Youden'} on val)`
            : '',
          row('val', r.metrics.val),
          ...(r.metrics.test ? [row('test', r.metrics.test)] : []),
        ]
          .filter(Boolean)
          .join('\n');
      });
    });
}

function registerPredict(classify: Command): void {
  classify
    .command('predict')
    .description('class probabilities of images (or an .npz split) as CSV')
    .argument('<model>', 'classifier folder written by `medseg classify train`')
    .argument('<inputs...>', 'one .npz, or image files (PNG, JPEG, TIFF, NIfTI, NRRD ...)')
    .requiredOption('--out <csv>', 'CSV to write: id, p_<class>..., predicted (and label for an .npz)')
    .addOption(splitOption())
    .option('--limit <n>', 'only this many cases of the split, balanced between classes', parsePositiveInteger)
    .option('--gradcam <dir>', 'also write a Grad-CAM heat map PNG of the predicted class per image into this folder')
    .action(async (model: string, inputs: string[], o: PredictCliOptions, cmd: Command) => {
      const p = await import('../../pipeline/classify.ts');
      const { net, folder } = p.loadClassifier(model);
      try {
        const { ids, set, labels } = await p.readClassificationInputs(inputs, folder, { split: o.split, limit: o.limit });
        const predictions = p.predictClasses(net, folder, set);
        p.writePredictionsCsv(o.out, ids, predictions, labels);
        const maps = o.gradcam ? p.explainClassifications(net, folder, ids, set, o.gradcam) : [];
        const counts = new Map<number, number>();
        for (const q of predictions) counts.set(q.predicted, (counts.get(q.predicted) ?? 0) + 1);
        printResult(cmd, { out: o.out, cases: predictions.length, predictedCounts: Object.fromEntries(counts), gradcam: maps.map((m) => m.png) }, () =>
          [
            `${o.out}: ${predictions.length} cases (${[...counts.entries()]
              .sort(([a], [b]) => a - b)
              .map(([k, n]) => `class ${k}: ${n}`)
              .join(', ')})`,
            ...(o.gradcam ? [`${maps.length} Grad-CAM maps in ${o.gradcam}`] : []),
          ].join('\n'),
        );
      } finally {
        net.dispose();
      }
    });
}

function registerExplain(classify: Command): void {
  classify
    .command('explain')
    .description("Grad-CAM heat maps of a classifier's evidence for a class, as PNG overlays")
    .argument('<model>', 'classifier folder written by `medseg classify train`')
    .argument('<inputs...>', 'one .npz, or image files')
    .requiredOption('--out <dir>', 'folder for <id>_gradcam.png')
    .addOption(splitOption())
    .option('--limit <n>', 'only this many cases of the split', parsePositiveInteger)
    .option('--class <k>', "the class explained (default: each image's predicted class)", parseClassIndex)
    .option('--layer <name>', "the feature map explained (default the classifier's last spatial stage)")
    .option('--plus-plus', 'Grad-CAM++ weights')
    .action(async (model: string, inputs: string[], o: ExplainCliOptions, cmd: Command) => {
      const p = await import('../../pipeline/classify.ts');
      const { MedsegExplainError } = await import('../../explain/errors.ts');
      const { CliUsageError } = await import('../errors.ts');
      const { net, folder } = p.loadClassifier(model);
      try {
        const { ids, set } = await p.readClassificationInputs(inputs, folder, { split: o.split, limit: o.limit });
        const maps = p.explainClassifications(net, folder, ids, set, o.out, { classIndex: o.class, layer: o.layer, plusPlus: o.plusPlus });
        printResult(cmd, { out: o.out, maps }, () => maps.map((m) => `${m.png} (class ${m.classIndex})`).join('\n'));
      } catch (e) {
        if (e instanceof MedsegExplainError) throw new CliUsageError(e.message);
        throw e;
      } finally {
        net.dispose();
      }
    });
}

export function register(program: Command): void {
  const classify = program.command('classify').description('image classification: train, predict (probabilities as CSV), explain (Grad-CAM)');
  registerTrain(classify);
  registerPredict(classify);
  registerExplain(classify);
}
