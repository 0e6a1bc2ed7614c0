/**
 * The choices a user makes when planning, their defaults, and where a
 * dataset's plan lives. Free of the engine, so a CLI can show the defaults in
 * its help without loading it.
 *
 * Defaults: a time budget of DEFAULT_MINUTES per fold (0: nnU-Net's sizes and
 * full schedule, 1000 x 250 iterations, no timing); architecture 'unet';
 * optimizer and loss from plan/complete.ts (AdamW under a budget, nnU-Net's
 * SGD without; Dice + CE); precision 'auto' (bf16 when this CPU has native
 * bf16 and a timed step is clearly faster; only budgeted plans are timed).
 *
 * A dataset's plan: `<dataset>/medseg/plan.json`, written by `medseg plan`
 * and read by `medseg preprocess` and `medseg train`; its preprocessed cases:
 * `<dataset>/medseg/preprocessed/<plan hash>/`.
 */
import { join, resolve } from 'node:path';
import type { TrainingChoices } from '../plan/types.ts';

export const DEFAULT_MINUTES = 30;
export const DEFAULT_ARCHITECTURE = 'unet';
/** The demo's training budget in minutes: short enough to try the whole chain, long enough for a usable model. */
export const DEMO_MINUTES = 5;

/** What a user chooses when planning; absent fields take the defaults above. */
export interface PlanningChoices extends TrainingChoices {
  /** Training budget per fold in minutes; 0 = no budget (nnU-Net's full schedule). */
  minutes?: number;
  architecture?: string;
  dims?: '2d' | '3d_fullres';
  /** Training and inference arithmetic; 'auto' (default): bf16 where the CPU has it and a timed step is faster (budgeted plans only). */
  precision?: 'fp32' | 'bf16' | 'auto';
}

/** The folder medseg keeps beside a dataset's own files (plan, preprocessed cases). */
export function datasetWorkDir(datasetDir: string): string {
  return join(resolve(datasetDir), 'medseg');
}

/** Where `medseg plan` writes a dataset's plan and `medseg train` looks for it. */
export function storedPlanPath(datasetDir: string): string {
  return join(datasetWorkDir(datasetDir), 'plan.json');
}

/** The planning choices among `o`'s fields (a command's options, a job's), those not made left out. */
export function planningChoicesOf(o: PlanningChoices): PlanningChoices {
  const c: PlanningChoices = {
    minutes: o.minutes,
    architecture: o.architecture,
    optimizer: o.optimizer,
    loss: o.loss,
    skeletonRecall: o.skeletonRecall,
    averageWeights: o.averageWeights,
    averageLr: o.averageLr,
    dims: o.dims,
    precision: o.precision,
  };
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as PlanningChoices;
}

/** Whether any planning choice was made (train then plans anew instead of using the stored plan). */
export function hasPlanningChoices(c: PlanningChoices): boolean {
  return Object.values(c).some((v) => v !== undefined);
}
