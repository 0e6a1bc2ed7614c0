/**
 * Shared body of the 2D accuracy benches (ISBI 2012 EM, DRIVE): import the
 * dataset, train one model on the given cases within a time budget (a few
 * training cases held out for model selection), predict the test cases with
 * sliding window + the plan's TTA, and score them with eval/metrics (region
 * masks such as DRIVE's field of view restrict every metric).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDataset, type DatasetCase } from '../../packages/medseg/src/data/dataset.ts';
import { evaluateCase } from '../../packages/medseg/src/eval/metrics.ts';
import type { CalibrationBins } from '../../packages/medseg/src/eval/probabilistic.ts';
import { poolReliability, type Reliability } from '../../packages/medseg/src/eval/probabilistic.ts';
import { disposeModel, loadModel, predictVolumes, readInputCase, type Prediction } from '../../packages/medseg/src/infer/predict.ts';
import { foldDir, foldFile, type CheckpointChoice } from '../../packages/medseg/src/plan/model-folder.ts';
import { readVolume, writeVolume } from '../../packages/medseg/src/io/read.ts';
import type { Volume } from '../../packages/medseg/src/io/volume.ts';
import type { Plan } from '../../packages/medseg/src/plan/types.ts';
import { trainModel, type TrainModelOptions, type TrainModelResult } from '../../packages/medseg/src/pipeline/train-model.ts';

export interface Seg2dRun {
  out: string;
  dataset: string;
  train: string[];
  val: string[];
  test: DatasetCase[];
  minutes: number;
  /** Registry name; the plan's default (U-Net) when absent. */
  architecture?: string;
  /** A plan to train with instead of planning (the study shares one plan between architectures). */
  plan?: Plan;
  /** Labels to score. */
  labels: number[];
  /** Also compute the surface-distance metrics (HD, HD95, ASSD, surface Dice); off by default (slower, and not every bench reports them). */
  distances?: boolean;
  /** Test-time augmentation on the test cases (default: the plan's mirroring and transposing). Off is 4-8x faster in 2D; the study turns it off to fit eight models in its time. */
  tta?: boolean;
  /** Weights to test: the best on validation (default) or the final ones (when the validation cases are also trained on). */
  checkpoint?: CheckpointChoice;
  /** Semi-supervised training (the label-efficiency bench). */
  semi?: TrainModelOptions['semi'];
  /** Initial weights (transfer learning, pretraining). */
  init?: TrainModelOptions['init'];
  /** Synthetic pairs mixed into training (a `medseg synthesize` folder and the share of draws). */
  synthetic?: TrainModelOptions['synthetic'];
  /** Weight of the skeleton-recall loss term (a planning choice; default none). */
  skeletonRecall?: number;
  /** Average the weights of the epochs after this share of the run (a planning choice); the averaged weights are tested too (Seg2dResult.averaged). */
  averageWeights?: number;
  /** With averageWeights: stochastic weight averaging, the learning rate held at this share of its peak while averaging (a planning choice). */
  averageLr?: number;
  /** The model card's Grad-CAM check (default on). */
  faithfulness?: boolean;
  /**
   * Continue the run in `out` from its checkpoint (a killed run). Off, the
   * model is trained anew even where a finished run's folder is: rerunning a
   * bench measures the code as it is, not the weights an older run left.
   */
  resume?: boolean;
  /** Called with each test case's prediction (probabilities kept) and reference, after scoring (the main weights' only). */
  onPrediction?: (c: DatasetCase, pred: Prediction, reference: Volume) => void | Promise<void>;
}

/** The test cases scored with one set of weights. */
export interface Seg2dScores {
  /** Per test case: label -> metrics; the prediction is saved as <predictions folder>/<id>.nii.gz. */
  perCase: { id: string; metrics: Record<number, Record<string, number>>; seconds: number; prediction: string }[];
  /** Reliability curve of the scored labels pooled over the test cases. */
  calibration: CalibrationBins | null;
  mean: (label: number, metric: string) => number;
}

export interface Seg2dResult extends Seg2dScores {
  trained: TrainModelResult;
  trainMinutes: number;
  /** With averageWeights: the same test cases scored with the averaged weights (predictions in predictions-averaged/). */
  averaged?: Seg2dScores;
}

/** The plan's sizes a bench result records (the full plan is in the model folder). */
export function planSummary(plan: Plan): { patchSize: number[]; batchSize: number; features: number[]; epochs: number; iterationsPerEpoch: number } {
  return {
    patchSize: plan.patchSize,
    batchSize: plan.batchSize,
    features: plan.network.features,
    epochs: plan.epochs,
    iterationsPerEpoch: plan.iterationsPerEpoch,
  };
}

export async function runSeg2d(r: Seg2dRun): Promise<Seg2dResult> {
  const modelDir = join(r.out, 'model');
  const t0 = Date.now();
  const trained = await trainModel({
    dataset: r.dataset,
    out: modelDir,
    split: { train: r.train, val: r.val },
    minutes: r.minutes,
    architecture: r.architecture,
    plan: r.plan,
    resume: (r.resume ?? false) && existsSync(foldFile(foldDir(modelDir, 0), 'checkpoint')),
    ...(r.semi ? { semi: r.semi } : {}),
    ...(r.init ? { init: r.init } : {}),
    ...(r.synthetic ? { synthetic: r.synthetic } : {}),
    ...(r.faithfulness === false ? { faithfulness: false } : {}),
    ...(r.skeletonRecall ? { skeletonRecall: r.skeletonRecall } : {}),
    ...(r.averageWeights !== undefined ? { averageWeights: r.averageWeights } : {}),
    ...(r.averageLr !== undefined ? { averageLr: r.averageLr } : {}),
  });
  const trainMinutes = (Date.now() - t0) / 60000;
  const scores = await scoreTestCases(r, modelDir, r.checkpoint, join(r.out, 'predictions'), r.onPrediction);
  const averaged = r.averageWeights !== undefined ? await scoreTestCases(r, modelDir, 'averaged', join(r.out, 'predictions-averaged')) : undefined;
  return { trained, trainMinutes, ...scores, ...(averaged ? { averaged } : {}) };
}

/** Predicts and scores the test cases with the model folder's `checkpoint` weights, calling `onPrediction` with each. */
async function scoreTestCases(
  r: Seg2dRun,
  modelDir: string,
  checkpoint: CheckpointChoice | undefined,
  predDir: string,
  onPrediction?: Seg2dRun['onPrediction'],
): Promise<Seg2dScores> {
  const model = loadModel(modelDir, { checkpoint });
  const perCase: Seg2dScores['perCase'] = [];
  const curves: Reliability[] = [];
  mkdirSync(predDir, { recursive: true });
  try {
    for (const c of r.test) {
      const images = await readInputCase(c.imagePaths[0]!, model.plan.channels.length);
      const pred = predictVolumes(model, images, { keepProbabilities: true, tta: r.tta });
      const ref = await readVolume(c.labelPath!);
      const region = c.regionMaskPath ? (await readVolume(c.regionMaskPath)).data : undefined;
      const ev = evaluateCase(pred.labels, ref, {
        labels: r.labels,
        regionMask: region,
        probabilities: { data: pred.probabilities!.data as Float32Array, channels: model.plan.network.numClasses },
        distances: r.distances ?? false,
      });
      const prediction = join(predDir, `${c.id}.nii.gz`);
      await writeVolume(prediction, pred.labels);
      const metrics: Record<number, Record<string, number>> = {};
      for (const m of ev.classes) {
        if (m.reliability) curves.push(m.reliability);
        metrics[m.label] = Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
      }
      perCase.push({ id: c.id, metrics, seconds: pred.seconds, prediction });
      await onPrediction?.(c, pred, ref);
    }
  } finally {
    disposeModel(model);
  }
  const mean = (label: number, metric: string) => {
    const v = perCase.map((p) => p.metrics[label]?.[metric]).filter((x): x is number => Number.isFinite(x));
    return v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  };
  return { perCase, calibration: poolReliability(curves), mean };
}

/** The training levers a 2D bench can try (each a planning choice), read from its --skeleton-recall, --average-weights and --average-lr flags. */
export interface Seg2dLevers {
  skeletonRecall?: number;
  averageWeights?: number;
  averageLr?: number;
  /** Suffix of the run folder and result file ('' with no lever: the bench's main result). */
  variant: string;
  /** The flags as given, for the result's command line. */
  flags: string;
}

export const LEVER_OPTIONS = { 'skeleton-recall': { type: 'string' }, 'average-weights': { type: 'string' }, 'average-lr': { type: 'string' } } as const;

export function seg2dLevers(values: { 'skeleton-recall'?: string; 'average-weights'?: string; 'average-lr'?: string }): Seg2dLevers {
  const skeletonRecall = values['skeleton-recall'] === undefined ? undefined : Number(values['skeleton-recall']);
  if (skeletonRecall !== undefined && !(skeletonRecall > 0)) throw new Error(`--skeleton-recall must be a weight > 0, got ${values['skeleton-recall']}`);
  const averageWeights = values['average-weights'] === undefined ? undefined : Number(values['average-weights']);
  if (averageWeights !== undefined && !(averageWeights >= 0 && averageWeights < 1))
    throw new Error(`--average-weights must be a share of the run in [0, 1), got ${values['average-weights']}`);
  const averageLr = values['average-lr'] === undefined ? undefined : Number(values['average-lr']);
  if (averageLr !== undefined && !(averageLr > 0 && averageLr <= 1 && averageWeights !== undefined))
    throw new Error(`--average-lr must be a share of the peak learning rate in (0, 1], with --average-weights, got ${values['average-lr']}`);
  const averaging = averageWeights === undefined ? '' : averageLr === undefined ? '-averaged' : '-swa';
  return {
    ...(skeletonRecall ? { skeletonRecall } : {}),
    ...(averageWeights !== undefined ? { averageWeights } : {}),
    ...(averageLr !== undefined ? { averageLr } : {}),
    variant: `${skeletonRecall ? '-skeleton-recall' : ''}${averaging}`,
    flags:
      `${skeletonRecall ? ` --skeleton-recall ${skeletonRecall}` : ''}${averageWeights !== undefined ? ` --average-weights ${averageWeights}` : ''}` +
      `${averageLr !== undefined ? ` --average-lr ${averageLr}` : ''}`,
  };
}

export function datasetCases(dir: string): { training: DatasetCase[]; test: DatasetCase[] } {
  const ds = readDataset(dir);
  return { training: ds.training, test: ds.test };
}

export function readJson<T>(p: string): T {
  return JSON.parse(readFileSync(p, 'utf8')) as T;
}
