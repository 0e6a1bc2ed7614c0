/**
 * The enhancement training loop, on the segmentation trainer's machinery
 * (train/trainer.ts: optimizer state, LR schedule over iterations or the
 * clock, checkpoints, resume, stop signals): epochs of batches from
 * data/enhance-pairs.ts, an L1 or MSE loss (at Noise2Void's blind spots only),
 * AdamW, then the validation loss on fixed batches of the validation volumes;
 * the best epoch's weights are kept. A run stops at its epoch count or time
 * budget and resumes exactly from its last checkpoint.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { foldFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { makeOptimizer } from './step.ts';
import { endOfEpoch, makeSchedule, resumeState, saveCheckpoint, scheduleStep, stopSignals, type CheckpointState, type ScheduleConfig } from './trainer.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { sampleBatch, type EnhanceBatch, type EnhanceVolume } from '../data/enhance-pairs.ts';
import type { EnhancementModel } from '../models/enhance-model.ts';

export interface EnhanceTrainingConfig extends ScheduleConfig {
  batchSize: number;
  weightDecay: number;
  gradClip: number;
  /** Fixed validation batches per epoch. */
  validationBatches: number;
  /** Stop after this many epochs without a lower validation loss; 0 = never. */
  earlyStoppingPatience: number;
  checkpointEvery: number;
  seed: number;
}

export const DEFAULT_ENHANCE_TRAINING: EnhanceTrainingConfig = {
  epochs: 50,
  iterationsPerEpoch: 50,
  timeBudgetMinutes: 0,
  warmupEpochs: 0,
  schedule: 'cosine',
  lr: 1e-3,
  batchSize: 8,
  weightDecay: 1e-4,
  gradClip: 12,
  validationBatches: 4,
  earlyStoppingPatience: 0,
  checkpointEvery: 1,
  seed: 12345,
};

export interface EnhanceEpochLog {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  iterations: number;
  epochSeconds: number;
  best: boolean;
}

export interface EnhanceTrainResult {
  epochsRun: number;
  bestEpoch: number;
  bestValLoss: number;
  stoppedBy: 'epochs' | 'early-stopping' | 'time-budget';
  minutes: number;
  iterations: number;
}

interface EnhanceState extends CheckpointState {
  epoch: number;
  bestScore: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  elapsedSeconds: number;
  iterations: number;
}

/** The batch's loss: mean L1 or squared error of the restored image, over the mask where there is one. */
export function enhanceLoss(model: EnhancementModel, b: EnhanceBatch): Tensor {
  return torch.tidy(() => {
    const out = model.forward(torch.tensor(b.input, b.shape));
    const diff = out.sub(torch.tensor(b.target, b.shape));
    const err = model.settings.loss === 'l1' ? diff.abs() : diff.square();
    if (!b.mask) return err.mean();
    const m = torch.tensor(b.mask, b.shape);
    return err.mul(m).sum().div(m.sum());
  });
}

function step(model: EnhancementModel, opt: torch.optim.Optimizer, b: EnhanceBatch, gradClip: number): number {
  return torch.tidy(() => {
    const loss = enhanceLoss(model, b);
    opt.zeroGrad();
    loss.backward();
    if (gradClip > 0) torch.optim.clipGradNorm(model.net.parameters(), gradClip);
    opt.step();
    return loss.item();
  });
}

/** Mean loss over the fixed validation batches (their own seed, the same every epoch). */
export function validationLoss(model: EnhancementModel, volumes: readonly EnhanceVolume[], cfg: EnhanceTrainingConfig): number {
  model.net.eval();
  let sum = 0;
  torch.noGrad(() => {
    for (let j = 0; j < cfg.validationBatches; j++) {
      sum += torch.tidy(() => enhanceLoss(model, sampleBatch(volumes, model.settings, cfg.batchSize, cfg.seed ^ 0x5eed, -1, j)).item());
    }
  });
  return sum / cfg.validationBatches;
}

export interface EnhanceTrainOptions {
  resume?: boolean;
  progress?: ProgressReporter;
  /** Stop (with a checkpoint) after this many epochs of this run: tests of resume. */
  stopAfterEpochs?: number;
  /** Called after every optimizer step with (iteration of the run, loss). */
  onStep?: (iteration: number, loss: number) => void;
}

export async function trainEnhancement(
  model: EnhancementModel,
  cfg: EnhanceTrainingConfig,
  data: { train: readonly EnhanceVolume[]; val: readonly EnhanceVolume[] },
  outDir: string,
  o: EnhanceTrainOptions = {},
): Promise<EnhanceTrainResult> {
  if (data.train.length === 0 || data.val.length === 0) throw new RangeError('enhancement training needs training and validation volumes');
  mkdirSync(outDir, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const net = model.net;
  const opt = makeOptimizer(net, { optimizer: 'adamw', lr: cfg.lr, weightDecay: cfg.weightDecay, momentum: 0 });
  const schedule = makeSchedule(opt, cfg);
  const ckptPath = foldFile(outDir, 'checkpoint');
  const logPath = foldFile(outDir, 'log');
  const fresh: EnhanceState = {
    epoch: -1,
    bestScore: Infinity,
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
  const meta = { format: 'medseg-enhance', task: model.settings.task };
  let stoppedBy: EnhanceTrainResult['stoppedBy'] = 'epochs';
  let epochsThisRun = 0;
  let runIterations = 0;
  try {
    let outOfTime = false;
    for (let epoch = state.epoch + 1; (budgeted || epoch < cfg.epochs) && !outOfTime; epoch++) {
      const te = Date.now();
      net.train();
      let lossSum = 0;
      let iterations = 0;
      progress.start(
        cfg.iterationsPerEpoch,
        budgeted
          ? `epoch ${epoch + 1} (${Math.max(0, cfg.timeBudgetMinutes - (Date.now() - t0) / 60000).toFixed(1)} min left)`
          : `epoch ${epoch + 1}/${cfg.epochs}`,
      );
      for (let it = 0; it < cfg.iterationsPerEpoch; it++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const elapsed = (Date.now() - t0) / 1000;
        if (budgeted && elapsed >= cfg.timeBudgetMinutes * 60) {
          outOfTime = true;
          break;
        }
        schedule?.loadStateDict({ stepCount: scheduleStep(cfg, epoch * cfg.iterationsPerEpoch + it, elapsed) });
        const loss = step(model, opt, sampleBatch(data.train, model.settings, cfg.batchSize, cfg.seed, epoch, it), cfg.gradClip);
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch}, iteration ${it} (lower the learning rate?)`);
        lossSum += loss;
        iterations++;
        o.onStep?.(++runIterations, loss);
        progress.update(it + 1, { loss: (lossSum / iterations).toFixed(5) });
      }
      progress.stop();
      if (iterations === 0) {
        stoppedBy = 'time-budget';
        break;
      }
      state.iterations += iterations;
      const valLoss = validationLoss(model, data.val, cfg);
      const best = valLoss < state.bestScore;
      if (best) {
        state.bestScore = valLoss;
        state.bestEpoch = epoch;
        state.epochsWithoutImprovement = 0;
        saveWeights(foldFile(outDir, 'best'), net.stateDict(), { ...meta, epoch: String(epoch), valLoss: String(valLoss) });
      } else {
        state.epochsWithoutImprovement++;
      }
      const entry: EnhanceEpochLog = {
        epoch,
        trainLoss: lossSum / iterations,
        valLoss,
        lr: opt.groups[0]!.lr,
        iterations,
        epochSeconds: (Date.now() - te) / 1000,
        best,
      };
      appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
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
    saveWeights(foldFile(outDir, 'final'), net.stateDict(), { ...meta, epoch: String(state.epoch) });
  } finally {
    opt.dispose();
    net.eval();
  }
  return {
    epochsRun: state.epoch + 1,
    bestEpoch: state.bestEpoch,
    bestValLoss: state.bestScore,
    stoppedBy,
    minutes: (Date.now() - t0) / 60000,
    iterations: state.iterations,
  };
}
