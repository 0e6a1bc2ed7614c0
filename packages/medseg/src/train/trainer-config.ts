/** The trainer's settings, read from a completed plan (plan/complete.ts fills every default). */
import type { Plan } from '../plan/types.ts';
import type { TrainerConfig } from './trainer.ts';

export function trainerConfig(plan: Plan): TrainerConfig {
  return {
    ...plan.training,
    epochs: plan.epochs,
    iterationsPerEpoch: plan.iterationsPerEpoch,
    patchSize: plan.patchSize,
    numClasses: plan.network.numClasses,
    validationMirror: false,
  };
}
