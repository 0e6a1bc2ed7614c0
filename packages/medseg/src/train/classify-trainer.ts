/**
 * The classification training loop, on epoch-loop.ts (the segmentation
 * trainer's LR schedule following iterations or the clock and its
 * checkpoint format): epochs of class-balanced (or plain) batches
 * drawn with replacement, cross-entropy with label smoothing, augmentation,
 * validation AUC after every epoch (accuracy where AUC is undefined), the
 * best epoch's weights kept, early stopping, a time budget, progress with
 * ETA, a JSONL log, and exact resume from the last checkpoint (batches are a
 * pure function of seed, epoch and iteration).
 */
import * as torch from '@medseg/torch';
import type { ClassificationNetwork } from '../models/classifier-config.ts';
import { batchArrays, caseCount, sampleBatchIndices, type ClassificationSet } from '../data/classification-set.ts';
import { classificationMetrics, softmaxRows } from '../eval/classification.ts';
import { negativeLogLikelihood } from '../eval/calibration.ts';
import { predictClassLogits } from '../infer/classify.ts';
import type { AugmentationParams, TrainingSettings } from '../plan/types.ts';
import { mixSeed } from '../util/random.ts';
import { makeOptimizer } from './step.ts';
import { runEpochs, type EpochLoopConfig, type EpochLoopOptions, type EpochLoopResult } from './epoch-loop.ts';

export interface ClassifierTrainingConfig extends EpochLoopConfig, Pick<TrainingSettings, 'optimizer' | 'weightDecay' | 'momentum' | 'gradClip'> {
  batchSize: number;
  /** Cross-entropy label smoothing (0 = none). */
  labelSmoothing: number;
  /** Draw each class equally often (else each case equally often). */
  balanced: boolean;
  seed: number;
}

export interface ClassifierTrainingData {
  train: ClassificationSet;
  val: ClassificationSet;
  /** null: no augmentation. */
  augmentation: AugmentationParams | null;
}

export interface ClassifierEpochLog {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAuc: number;
  valAccuracy: number;
  /** The score that picks the best epoch: validation AUC, or accuracy where AUC is undefined. */
  valScore: number;
  lr: number;
  iterations: number;
  epochSeconds: number;
  best: boolean;
}

export type ClassifierTrainResult = EpochLoopResult;

/** One optimizer step on a batch; returns the loss before the update. */
function classifierStep(net: ClassificationNetwork, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, cfg: ClassifierTrainingConfig): number {
  return torch.tidy(() => {
    const loss = torch.F.crossEntropy(net.forward(x), y, { labelSmoothing: cfg.labelSmoothing });
    opt.zeroGrad();
    loss.backward();
    if (cfg.gradClip > 0) torch.optim.clipGradNorm(net.parameters(), cfg.gradClip);
    opt.step();
    return loss.item();
  });
}

/** Validation loss, AUC, accuracy and the score choosing the best epoch. */
export function validationScores(net: ClassificationNetwork, val: ClassificationSet): { loss: number; auc: number; accuracy: number; score: number } {
  const K = net.config.numClasses;
  const logits = predictClassLogits(net, val);
  const m = classificationMetrics(softmaxRows(logits, K), val.labels, K);
  return { loss: negativeLogLikelihood(logits, val.labels, K), auc: m.auc, accuracy: m.accuracy, score: Number.isFinite(m.auc) ? m.auc : m.accuracy };
}

export type ClassifierTrainOptions = EpochLoopOptions;

export async function trainClassifier(
  net: ClassificationNetwork,
  cfg: ClassifierTrainingConfig,
  data: ClassifierTrainingData,
  outDir: string,
  o: ClassifierTrainOptions = {},
): Promise<ClassifierTrainResult> {
  if (caseCount(data.train) === 0 || caseCount(data.val) === 0) throw new Error('classifier training needs training and validation cases');
  const opt = makeOptimizer(net, cfg);
  try {
    return await runEpochs(
      net,
      opt,
      cfg,
      outDir,
      {
        step: (epoch, it) => {
          const idx = sampleBatchIndices(data.train.labels, cfg.batchSize, cfg.balanced, cfg.seed, epoch, it);
          const b = batchArrays(data.train, idx, data.augmentation ? { params: data.augmentation, seed: mixSeed(cfg.seed, epoch, it, 1) } : null);
          return torch.tidy(() => classifierStep(net, opt, torch.tensor(b.image, b.shape), torch.tensor(b.label, [idx.length]), cfg));
        },
        validate: () => validationScores(net, data.val),
        higherIsBetter: true,
        logFields: (v) => ({ valLoss: v.loss, valAuc: v.auc, valAccuracy: v.accuracy, valScore: v.score }),
        report: (e, v) =>
          `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(4)}  val loss ${v.loss.toFixed(4)}  AUC ${v.auc.toFixed(4)}  ACC ${v.accuracy.toFixed(4)}${e.best ? '  (best)' : ''}  ${e.epochSeconds.toFixed(1)}s`,
      },
      o,
    );
  } finally {
    opt.dispose();
  }
}
