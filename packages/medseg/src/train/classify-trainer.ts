/**
 * The classification training loop, on the segmentation trainer's machinery
 * (train/trainer.ts's optimizer, LR schedule following iterations or the
 * clock, checkpoint format): epochs of class-balanced (or plain) batches
 * drawn with replacement, cross-entropy with label smoothing, augmentation,
 * validation AUC after every epoch (accuracy where AUC is undefined), the
 * best epoch's weights kept, early stopping, a time budget, progress with
 * ETA, a JSONL log, and exact resume from the last checkpoint (batches are a
 * pure function of seed, epoch and iteration).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import * as torch from '@medseg/torch';
import type { ClassificationNetwork } from '../models/classifier-config.ts';
import { batchArrays, caseCount, sampleBatchIndices, type ClassificationSet } from '../data/classification-set.ts';
import { classificationMetrics, softmaxRows } from '../eval/classification.ts';
import { negativeLogLikelihood } from '../eval/calibration.ts';
import { predictClassLogits } from '../infer/classify.ts';
import { foldFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import type { AugmentationParams, TrainingSettings } from '../plan/types.ts';
import { mixSeed } from '../util/random.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { makeOptimizer } from './step.ts';
import { endOfEpoch, makeSchedule, resumeState, saveCheckpoint, scheduleStep, stopSignals, type CheckpointState, type ScheduleConfig } from './trainer.ts';

export interface ClassifierTrainingConfig extends ScheduleConfig, Pick<TrainingSettings, 'optimizer' | 'weightDecay' | 'momentum' | 'gradClip'> {
  batchSize: number;
  /** Cross-entropy label smoothing (0 = none). */
  labelSmoothing: number;
  /** Draw each class equally often (else each case equally often). */
  balanced: boolean;
  /** Stop after this many epochs without a better validation score; 0 = never. */
  earlyStoppingPatience: number;
  checkpointEvery: number;
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

export interface ClassifierTrainResult {
  epochsRun: number;
  bestEpoch: number;
  bestScore: number;
  stoppedBy: 'epochs' | 'early-stopping' | 'time-budget';
  minutes: number;
  iterations: number;
}

interface ClassifierState extends CheckpointState {
  epoch: number;
  bestScore: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  elapsedSeconds: number;
  iterations: number;
}

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

export interface ClassifierTrainOptions {
  resume?: boolean;
  progress?: ProgressReporter;
  /** Stop (with a checkpoint) after this many epochs of this run: tests of resume. */
  stopAfterEpochs?: number;
  /** Metadata written into the best and final weights files. */
  weightsMetadata?: Record<string, string>;
}

export async function trainClassifier(
  net: ClassificationNetwork,
  cfg: ClassifierTrainingConfig,
  data: ClassifierTrainingData,
  outDir: string,
  o: ClassifierTrainOptions = {},
): Promise<ClassifierTrainResult> {
  if (caseCount(data.train) === 0 || caseCount(data.val) === 0) throw new Error('classifier training needs training and validation cases');
  mkdirSync(outDir, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const opt = makeOptimizer(net, cfg);
  const schedule = makeSchedule(opt, cfg);
  const ckptPath = foldFile(outDir, 'checkpoint');
  const logPath = foldFile(outDir, 'log');
  const fresh: ClassifierState = {
    epoch: -1,
    bestScore: -Infinity,
    bestEpoch: -1,
    epochsWithoutImprovement: 0,
    elapsedSeconds: 0,
    iterations: 0,
    optimizer: { step: {}, groups: [] },
    schedule: null,
  };
  const state = resumeState(outDir, net, opt, schedule, o.resume ?? false, fresh);
  const t0 = Date.now() - state.elapsedSeconds * 1000;
  const budgeted = cfg.timeBudgetMinutes > 0;
  let stoppedBy: ClassifierTrainResult['stoppedBy'] = 'epochs';
  let epochsThisRun = 0;
  try {
    let outOfTime = false;
    for (let epoch = state.epoch + 1; (budgeted || epoch < cfg.epochs) && !outOfTime; epoch++) {
      const te = Date.now();
      net.train();
      let lossSum = 0;
      let iterations = 0;
      const label = budgeted
        ? `epoch ${epoch + 1} (${Math.max(0, cfg.timeBudgetMinutes - (Date.now() - t0) / 60000).toFixed(1)} min left)`
        : `epoch ${epoch + 1}/${cfg.epochs}`;
      progress.start(cfg.iterationsPerEpoch, label);
      for (let it = 0; it < cfg.iterationsPerEpoch; it++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const elapsed = (Date.now() - t0) / 1000;
        if (budgeted && elapsed >= cfg.timeBudgetMinutes * 60) {
          outOfTime = true;
          break;
        }
        schedule?.loadStateDict({ stepCount: scheduleStep(cfg, epoch * cfg.iterationsPerEpoch + it, elapsed) });
        const idx = sampleBatchIndices(data.train.labels, cfg.batchSize, cfg.balanced, cfg.seed, epoch, it);
        const b = batchArrays(data.train, idx, data.augmentation ? { params: data.augmentation, seed: mixSeed(cfg.seed, epoch, it, 1) } : null);
        const loss = torch.tidy(() => classifierStep(net, opt, torch.tensor(b.image, b.shape), torch.tensor(b.label, [idx.length]), cfg));
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch}, iteration ${it} (lower the learning rate?)`);
        lossSum += loss;
        iterations++;
        progress.update(it + 1, { loss: (lossSum / iterations).toFixed(4), 'best val': Number.isFinite(state.bestScore) ? state.bestScore.toFixed(4) : '-' });
      }
      progress.stop();
      if (iterations === 0) {
        stoppedBy = 'time-budget';
        break;
      }
      state.iterations += iterations;
      const v = validationScores(net, data.val);
      const best = v.score > state.bestScore;
      if (best) {
        state.bestScore = v.score;
        state.bestEpoch = epoch;
        state.epochsWithoutImprovement = 0;
        saveWeights(foldFile(outDir, 'best'), net.stateDict(), { ...o.weightsMetadata, epoch: String(epoch), valScore: String(v.score) });
      } else {
        state.epochsWithoutImprovement++;
      }
      const entry: ClassifierEpochLog = {
        epoch,
        trainLoss: lossSum / iterations,
        valLoss: v.loss,
        valAuc: v.auc,
        valAccuracy: v.accuracy,
        valScore: v.score,
        lr: opt.groups[0]!.lr,
        iterations,
        epochSeconds: (Date.now() - te) / 1000,
        best,
      };
      appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
      process.stderr.write(
        `epoch ${epoch + 1}: loss ${entry.trainLoss.toFixed(4)}  val loss ${v.loss.toFixed(4)}  AUC ${v.auc.toFixed(4)}  ACC ${v.accuracy.toFixed(4)}${best ? '  (best)' : ''}  ${entry.epochSeconds.toFixed(1)}s\n`,
      );
      state.epoch = epoch;
      state.elapsedSeconds = (Date.now() - t0) / 1000;
      epochsThisRun++;
      const stop = endOfEpoch(cfg, state, epochsThisRun, o.stopAfterEpochs, stopSignals(cfg, state, outOfTime), () =>
        saveCheckpoint(ckptPath, net, opt, state, schedule),
      );
      if (stop) {
        if (stop !== 'stopAfterEpochs') stoppedBy = stop;
        break;
      }
    }
    saveWeights(foldFile(outDir, 'final'), net.stateDict(), { ...o.weightsMetadata, epoch: String(state.epoch) });
  } finally {
    opt.dispose();
  }
  return {
    epochsRun: state.epoch + 1,
    bestEpoch: state.bestEpoch,
    bestScore: state.bestScore,
    stoppedBy,
    minutes: (Date.now() - t0) / 60000,
    iterations: state.iterations,
  };
}
