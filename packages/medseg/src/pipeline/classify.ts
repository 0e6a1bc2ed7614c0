/**
 * Classification jobs: train a classifier on a MedMNIST-style .npz (train on
 * the train split, pick the best epoch and fit the temperature and the
 * operating point on val, report on test), and load a trained classifier
 * folder to predict.
 *
 * A classifier folder holds classifier.json (config, training settings,
 * temperature, threshold, metrics) and the trainer's files
 * (model_best/model_final/checkpoint_latest .safetensors, log.jsonl).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import { classifierConfig, createClassifier, type ClassificationNetwork, type ClassifierConfig } from '../models/classifier-registry.ts';
import {
  caseCount,
  classCounts,
  readClassificationNpz,
  xrayAugmentation,
  batchArrays,
  sampleBatchIndices,
  type ClassificationSet,
  type Split,
} from '../data/classification-set.ts';
import { calibrationError, fitTemperature } from '../eval/calibration.ts';
import { chooseThreshold, classificationMetrics, softmaxRows, type ClassificationMetrics, type OperatingPointRule } from '../eval/classification.ts';
import { classificationSetFromVolumes, predictClassLogits } from '../infer/classify.ts';
import { classifierGradCam, classifierHeatPng } from '../explain/classify-gradcam.ts';
import { foldFile } from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { trainClassifier, type ClassifierTrainingConfig, type ClassifierTrainResult } from '../train/classify-trainer.ts';
import { makeOptimizer } from '../train/step.ts';
import { initializeWeights, type InitOptions } from '../train/transfer.ts';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic-write.ts';
import { toCsv } from '../util/csv.ts';
import type { ProgressReporter } from '../util/progress.ts';
import { timeRobustly } from '../util/robust-timing.ts';

export const CLASSIFIER_FILE = 'classifier.json';
export const CLASSIFIER_SCHEMA = 'medseg.classifier/1';

export interface SplitReport extends ClassificationMetrics {
  /** Accuracy of the argmax class (binary: probability >= 0.5), as MedMNIST reports ACC; `accuracy` is at the chosen threshold. */
  argmaxAccuracy: number;
  /** Expected calibration error (15 bins) before and after temperature scaling. */
  ece: number;
  eceScaled: number;
}

export interface ClassifierFolder {
  schema: typeof CLASSIFIER_SCHEMA;
  config: ClassifierConfig;
  training: ClassifierTrainingConfig & { augment: boolean; horizontalFlip: boolean };
  /** Softmax temperature fitted on the validation split. */
  temperature: number;
  /** Binary: the positive-class probability threshold (after temperature) and how it was chosen. */
  threshold?: number;
  operatingPoint?: OperatingPointRule;
  /** Seconds per training step measured before a budgeted run (null without a budget), and the epochs the budget was expected to allow. */
  stepSeconds: number | null;
  plannedEpochs: number;
  result: ClassifierTrainResult;
  metrics: { val: SplitReport; test?: SplitReport };
  trainCases: number;
  trainClassCounts: number[];
  data: string;
  /** What transfer learning copied (absent without --init). */
  init?: { file: string; from: string; part: string; loaded: number; skipped: number; untouched: number };
}

export interface TrainClassifierOptions {
  /** The .npz with train/val/test splits. */
  data: string;
  outDir: string;
  architecture?: string;
  /** Time budget; 0 = train `epochs` epochs. */
  minutes?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  width?: number;
  extra?: Record<string, unknown>;
  labelSmoothing?: number;
  balanced?: boolean;
  augment?: boolean;
  horizontalFlip?: boolean;
  earlyStoppingPatience?: number;
  operatingPoint?: OperatingPointRule;
  seed?: number;
  /** Keep only this many cases of each split (balanced between classes): tests and smoke runs. */
  limit?: number;
  resume?: boolean;
  progress?: ProgressReporter;
  /** Stop (with a checkpoint) after this many epochs of this run. */
  stopAfterEpochs?: number;
  /** Transfer learning: start from a medseg model folder or .safetensors (e.g. a segmentation HybridNet's encoder). */
  init?: InitOptions;
}

/** Seconds of one training step of `net` at `batchSize` (median of clean repetitions; the weights are restored afterwards). */
async function timeClassifierStep(net: ClassificationNetwork, set: ClassificationSet, cfg: ClassifierTrainingConfig): Promise<number> {
  const saved = new Map([...net.stateDict()].map(([k, t]) => [k, torch.keep(t.clone())]));
  const opt = makeOptimizer(net, cfg);
  const b = batchArrays(set, sampleBatchIndices(set.labels, cfg.batchSize, cfg.balanced, cfg.seed, -1, 0), null);
  const x = torch.keep(torch.tensor(b.image, b.shape));
  const y = torch.keep(torch.tensor(b.label, [cfg.batchSize]));
  try {
    net.train();
    const t = await timeRobustly(
      () =>
        torch.tidy(() => {
          const loss = torch.F.crossEntropy(net.forward(x), y);
          opt.zeroGrad();
          loss.backward();
          opt.step();
        }),
      { warmup: 1, reps: 2, maxSeconds: 4, minCleanSeconds: 0.5 },
    );
    return t.seconds;
  } finally {
    opt.dispose();
    x.dispose();
    y.dispose();
    net.loadStateDict(saved);
    for (const t of saved.values()) t.dispose();
  }
}

function splitReport(logits: Float32Array, labels: Int32Array, K: number, temperature: number, threshold?: number): SplitReport {
  const probabilities = softmaxRows(logits, K, temperature);
  const m = classificationMetrics(probabilities, labels, K, { threshold });
  const argmaxAccuracy = classificationMetrics(probabilities, labels, K).accuracy;
  return { ...m, argmaxAccuracy, ece: calibrationError(logits, labels, K).ece, eceScaled: calibrationError(logits, labels, K, { temperature }).ece };
}

/** Trains a classifier on the .npz's train split and writes the classifier folder. */
export async function trainClassifierFromNpz(o: TrainClassifierOptions): Promise<ClassifierFolder> {
  const limit = o.limit;
  const train = readClassificationNpz(o.data, 'train', { limit });
  const val = readClassificationNpz(o.data, 'val', { limit });
  let test: ClassificationSet | null = null;
  try {
    test = readClassificationNpz(o.data, 'test', { limit });
  } catch (e) {
    if (!(e instanceof MedsegIoError && e.code === 'BAD_DATA')) throw e;
  }
  const numClasses = Math.max(...train.labels, ...val.labels) + 1;
  if (numClasses < 2) throw new Error(`${o.data}: the training labels hold a single class`);
  const config = classifierConfig(o.architecture ?? 'resnet18', train.shape, {
    inChannels: train.channels,
    numClasses,
    ...(o.width ? { width: o.width } : {}),
    ...(o.extra ? { extra: o.extra } : {}),
  });
  const batchSize = Math.min(o.batchSize ?? 128, caseCount(train));
  const minutes = o.minutes ?? 0;
  const cfg: ClassifierTrainingConfig = {
    optimizer: 'adamw',
    // Transformers want a lower rate than CNNs; clipping guards both against an early blow-up.
    lr: o.lr ?? (config.architecture === 'vit' ? 5e-4 : 1e-3),
    weightDecay: 1e-4,
    momentum: 0.99,
    gradClip: 5,
    schedule: 'cosine',
    warmupEpochs: 1,
    epochs: o.epochs ?? 100,
    iterationsPerEpoch: Math.max(1, Math.ceil(caseCount(train) / batchSize)),
    timeBudgetMinutes: minutes,
    batchSize,
    labelSmoothing: o.labelSmoothing ?? 0.1,
    balanced: o.balanced ?? true,
    earlyStoppingPatience: o.earlyStoppingPatience ?? 0,
    checkpointEvery: 1,
    seed: o.seed ?? 0,
  };
  torch.manualSeed(cfg.seed);
  const net = createClassifier(config);
  try {
    // A resumed run takes its weights from the checkpoint; a fresh one may start from another model's.
    const init = o.init && !o.resume ? initializeWeights(net, o.init) : null;
    // Under a time budget a training step is timed first, to plan the epochs (and the LR warm-up's share) the budget allows.
    const stepSeconds = minutes > 0 ? await timeClassifierStep(net, train, cfg) : null;
    // The planner's rule for a time budget: epochs = budget / (measured step x steps per epoch); the schedule follows the clock.
    const plannedEpochs = minutes > 0 ? Math.max(1, Math.floor((minutes * 60) / (stepSeconds! * cfg.iterationsPerEpoch * 1.1))) : cfg.epochs;
    if (minutes > 0) cfg.epochs = plannedEpochs;
    const augment = o.augment ?? true;
    const horizontalFlip = o.horizontalFlip ?? true;
    const result = await trainClassifier(net, cfg, { train, val, augmentation: augment ? xrayAugmentation(config.dims, horizontalFlip) : null }, o.outDir, {
      resume: o.resume,
      progress: o.progress,
      stopAfterEpochs: o.stopAfterEpochs,
      weightsMetadata: { architecture: config.architecture },
    });
    const best = foldFile(o.outDir, 'best');
    if (existsSync(best)) loadWeightsInto(net, best);
    const K = numClasses;
    const valLogits = predictClassLogits(net, val);
    const temperature = fitTemperature(valLogits, val.labels, K).temperature;
    let threshold: number | undefined;
    const operatingPoint = K === 2 ? (o.operatingPoint ?? { kind: 'youden' }) : undefined;
    if (operatingPoint && classCounts(val.labels, 2).every((c) => c > 0)) {
      const scores = softmaxRows(valLogits, K, temperature).filter((_, j) => j % 2 === 1);
      threshold = chooseThreshold(scores, val.labels, operatingPoint).threshold;
    }
    const metrics: ClassifierFolder['metrics'] = { val: splitReport(valLogits, val.labels, K, temperature, threshold) };
    if (test) metrics.test = splitReport(predictClassLogits(net, test), test.labels, K, temperature, threshold);
    const folder: ClassifierFolder = {
      schema: CLASSIFIER_SCHEMA,
      config,
      training: { ...cfg, augment, horizontalFlip },
      temperature,
      ...(threshold !== undefined ? { threshold, operatingPoint } : {}),
      stepSeconds,
      plannedEpochs,
      result,
      metrics,
      trainCases: caseCount(train),
      trainClassCounts: classCounts(train.labels, K),
      data: o.data,
      ...(init
        ? {
            init: {
              file: init.file,
              from: init.from,
              part: init.part,
              loaded: init.loaded.length,
              skipped: init.skipped.length,
              untouched: init.untouched.length,
            },
          }
        : {}),
    };
    writeJsonAtomicSync(join(o.outDir, CLASSIFIER_FILE), folder);
    return folder;
  } finally {
    net.dispose();
  }
}

/** Reads a classifier folder's description (a clear error when the folder is not one). */
export function readClassifierFolder(modelDir: string): ClassifierFolder {
  const path = join(modelDir, CLASSIFIER_FILE);
  if (!existsSync(path))
    throw new MedsegIoError('NOT_FOUND', `not a classifier folder: no ${CLASSIFIER_FILE} (train one with 'medseg classify train')`, modelDir);
  let folder: ClassifierFolder;
  try {
    folder = JSON.parse(readFileSync(path, 'utf8')) as ClassifierFolder;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `${CLASSIFIER_FILE} is not valid JSON (${(e as Error).message})`, modelDir);
  }
  if (folder.schema !== CLASSIFIER_SCHEMA)
    throw new MedsegIoError('UNSUPPORTED', `${CLASSIFIER_FILE} has schema '${String(folder.schema)}', expected '${CLASSIFIER_SCHEMA}'`, modelDir);
  return folder;
}

/** The trained classifier of a folder (best epoch's weights, else the last), in eval mode. */
export function loadClassifier(modelDir: string): { net: ClassificationNetwork; folder: ClassifierFolder } {
  const folder = readClassifierFolder(modelDir);
  const net = createClassifier(folder.config);
  const weights = [foldFile(modelDir, 'best'), foldFile(modelDir, 'final')].find(existsSync);
  if (!weights) {
    net.dispose();
    throw new MedsegIoError('NOT_FOUND', 'the classifier folder has no weights (model_best or model_final .safetensors)', modelDir);
  }
  loadWeightsInto(net, weights);
  net.eval();
  return { net, folder };
}

export interface ClassPrediction {
  /** Class probabilities after temperature scaling. */
  probabilities: number[];
  /** The predicted class: binary, positive when its probability reaches the threshold; else the argmax. */
  predicted: number;
}

/** Predictions of a loaded classifier for every case of a set. */
export function predictClasses(net: ClassificationNetwork, folder: ClassifierFolder, set: ClassificationSet): ClassPrediction[] {
  const K = folder.config.numClasses;
  const probs = softmaxRows(predictClassLogits(net, set), K, folder.temperature);
  return Array.from({ length: caseCount(set) }, (_, i) => {
    const p = Array.from(probs.subarray(i * K, (i + 1) * K));
    const predicted = K === 2 && folder.threshold !== undefined ? (p[1]! >= folder.threshold ? 1 : 0) : p.indexOf(Math.max(...p));
    return { probabilities: p, predicted };
  });
}

/** The cases to classify: one split of an .npz (default test), or image files (any format medseg reads). */
export async function readClassificationInputs(
  inputs: string[],
  folder: ClassifierFolder,
  o: { split?: Split; limit?: number } = {},
): Promise<{ ids: string[]; set: ClassificationSet; labels: Int32Array | null }> {
  if (inputs.length === 0) throw new Error('give an .npz or image files to classify');
  if (inputs.length === 1 && inputs[0]!.toLowerCase().endsWith('.npz')) {
    const split = o.split ?? 'test';
    const set = readClassificationNpz(inputs[0]!, split, { limit: o.limit });
    if (set.shape.join(',') !== folder.config.inputSize.join(',') || set.channels !== folder.config.inChannels) {
      throw new MedsegIoError(
        'BAD_DATA',
        `images are ${set.channels} x [${set.shape}], the classifier takes ${folder.config.inChannels} x [${folder.config.inputSize}]`,
        inputs[0],
      );
    }
    return { ids: Array.from({ length: caseCount(set) }, (_, i) => `${split}_${i}`), set, labels: set.labels };
  }
  const volumes = [];
  for (const p of inputs) volumes.push(await readVolume(p));
  return { ids: inputs.map((p) => basename(p)), set: classificationSetFromVolumes(volumes, folder.config), labels: null };
}

/** Writes the predictions as CSV: id, p_<class>..., predicted (and label when known). */
export function writePredictionsCsv(path: string, ids: string[], predictions: ClassPrediction[], labels: Int32Array | null): void {
  const K = predictions[0]?.probabilities.length ?? 0;
  const header = ['id', ...Array.from({ length: K }, (_, k) => `p_${k}`), 'predicted', ...(labels ? ['label'] : [])];
  const rows = predictions.map((p, i) => [ids[i]!, ...p.probabilities.map((v) => Number(v.toPrecision(6))), p.predicted, ...(labels ? [labels[i]!] : [])]);
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileAtomicSync(path, toCsv(header, rows));
}

/**
 * Grad-CAM heat maps of a classifier for each case, written as PNG overlays
 * <outDir>/<id>_gradcam.png; the class explained is `classIndex`, or each
 * case's predicted class. Returns the files.
 */
export function explainClassifications(
  net: ClassificationNetwork,
  folder: ClassifierFolder,
  ids: string[],
  set: ClassificationSet,
  outDir: string,
  o: { classIndex?: number; layer?: string; plusPlus?: boolean } = {},
): { id: string; classIndex: number; png: string }[] {
  mkdirSync(outDir, { recursive: true });
  const predictions = o.classIndex === undefined ? predictClasses(net, folder, set) : null;
  return ids.map((id, i) => {
    const { image, shape } = batchArrays(set, [i], null);
    const classIndex = o.classIndex ?? predictions![i]!.predicted;
    const heat = torch.tidy(() => classifierGradCam(net, torch.tensor(image, shape), { classIndex, layer: o.layer, plusPlus: o.plusPlus }).toFloat32Array());
    const png = join(outDir, `${id.replace(/\.[^.]*(\.gz)?$/, '')}_gradcam.png`);
    const firstChannel = image.subarray(0, heat.length);
    writeFileAtomicSync(png, classifierHeatPng(firstChannel, heat, set.shape));
    return { id, classIndex, png };
  });
}
