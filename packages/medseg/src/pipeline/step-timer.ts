/**
 * Times one real training step of a network the planner is considering:
 * forward, deep-supervision Dice + CE loss, backward, gradient clipping and an
 * AdamW update, on random data at the plan's batch and patch size.
 *
 * Why: the planner's throughput model counts convolution MACs only. On CPU at
 * the narrow widths a time budget forces (8-16 channels), instance norm,
 * activations, transposed convolutions, the loss heads and the optimizer are
 * memory-bound and add as much again: DRIVE's 3-minute plan predicted
 * 0.06 s/step and ran at 0.14, ISBI's 10-minute plan ran 5 of 9 epochs. The
 * planner calibrates its model against this measurement (data/plan.ts).
 */
import * as torch from '@medseg/torch';
import type { NetworkConfig } from '../models/config.ts';
import { createNetwork } from '../models/registry.ts';
import { deepSupervisionLoss } from '../train/losses.ts';
import { median } from '../util/quantile.ts';

export interface StepTiming {
  /** Median seconds of the timed steps. */
  seconds: number;
  steps: number[];
}

export function timeTrainingStep(network: NetworkConfig, patchSize: number[], batchSize: number, o: { warmup?: number; reps?: number } = {}): StepTiming {
  const warmup = o.warmup ?? 1;
  const reps = o.reps ?? 3;
  const net = createNetwork(network);
  const opt = new torch.optim.AdamW(net.parameters(), { lr: 1e-3, weightDecay: 0.01 });
  const x = torch.keep(torch.randn([batchSize, network.inChannels, ...patchSize]));
  const y = torch.keep(torch.randint(0, network.numClasses, [batchSize, ...patchSize]));
  const steps: number[] = [];
  try {
    net.train();
    for (let i = 0; i < warmup + reps; i++) {
      const t0 = performance.now();
      torch.tidy(() => {
        const l = deepSupervisionLoss(net.forward(x), y, { name: 'dice_ce', batchDice: network.dims === 3 });
        opt.zeroGrad();
        l.backward();
        torch.optim.clipGradNorm(net.parameters(), 12);
        opt.step();
        return l.item();
      });
      if (i >= warmup) steps.push((performance.now() - t0) / 1000);
    }
  } finally {
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
  }
  return { seconds: median(steps), steps };
}

/** The planner's step timer (PlanOptions.stepTimer): median seconds of a timed step. */
export function timedStepSeconds(network: NetworkConfig, patchSize: number[], batchSize: number): number {
  return timeTrainingStep(network, patchSize, batchSize).seconds;
}
