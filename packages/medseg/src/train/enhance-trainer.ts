/**
 * The enhancement training loop, on epoch-loop.ts (the segmentation
 * trainer's LR schedule over iterations or the clock, checkpoints, resume,
 * stop signals): epochs of batches from
 * data/enhance-pairs.ts, an L1 or MSE loss (at Noise2Void's blind spots only),
 * AdamW, then the validation loss on fixed batches of the validation volumes;
 * the best epoch's weights are kept. A run stops at its epoch count or time
 * budget and resumes exactly from its last checkpoint.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { makeOptimizer } from './step.ts';
import { runEpochs, type EpochLoopConfig, type EpochLoopOptions, type EpochLoopResult } from './epoch-loop.ts';
import { sampleBatch, type EnhanceBatch, type EnhanceVolume } from '../data/enhance-pairs.ts';
import type { EnhancementModel } from '../models/enhance-model.ts';

export interface EnhanceTrainingConfig extends EpochLoopConfig {
  batchSize: number;
  weightDecay: number;
  gradClip: number;
  /** Fixed validation batches per epoch. */
  validationBatches: number;
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

export type EnhanceTrainResult = EpochLoopResult;

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

/** Trains `model` (validation loss picks the best epoch: lower is better). */
export async function trainEnhancement(
  model: EnhancementModel,
  cfg: EnhanceTrainingConfig,
  data: { train: readonly EnhanceVolume[]; val: readonly EnhanceVolume[] },
  outDir: string,
  o: EpochLoopOptions = {},
): Promise<EnhanceTrainResult> {
  if (data.train.length === 0 || data.val.length === 0) throw new RangeError('enhancement training needs training and validation volumes');
  const opt = makeOptimizer(model.net, { optimizer: 'adamw', lr: cfg.lr, weightDecay: cfg.weightDecay, momentum: 0 });
  try {
    return await runEpochs(
      model.net,
      opt,
      cfg,
      outDir,
      {
        step: (epoch, it) => step(model, opt, sampleBatch(data.train, model.settings, cfg.batchSize, cfg.seed, epoch, it), cfg.gradClip),
        validate: () => ({ score: validationLoss(model, data.val, cfg) }),
        higherIsBetter: false,
        logFields: (v) => ({ valLoss: v.score }),
      },
      { weightsMetadata: { format: 'medseg-enhance', task: model.settings.task }, ...o },
    );
  } finally {
    opt.dispose();
    model.net.eval();
  }
}
