/**
 * The planning options `medseg plan` and `medseg train` share: the same flags
 * parse to the same choices, and the defaults are the pipeline's
 * (pipeline/planning-choices.ts), never set here.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { listArchitectures } from '../models/catalog.ts';
import { DEFAULT_ARCHITECTURE, DEFAULT_MINUTES } from '../pipeline/planning-choices.ts';
import { parseNonNegative, parsePositiveShare, parseShare } from './output.ts';

function oneOf<T extends string>(values: readonly T[]) {
  return (v: string): T => {
    if (!values.includes(v as T)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return v as T;
  };
}

export function addPlanningOptions(cmd: Command): Command {
  const architectures = listArchitectures().map((a) => a.name);
  return cmd
    .option(
      '--minutes <n>',
      `training time budget per fold in minutes (default ${DEFAULT_MINUTES}; 0: nnU-Net's sizes and full 1000 x 250 schedule with SGD)`,
      parseNonNegative,
    )
    .option('--architecture <name>', `network: ${architectures.join(', ')} (default ${DEFAULT_ARCHITECTURE})`, oneOf(architectures))
    .option(
      '--optimizer <name>',
      'sgd (nnU-Net: Nesterov, poly) or adamw (cosine with warm-up) (default: adamw with a time budget, sgd without)',
      oneOf(['sgd', 'adamw'] as const),
    )
    .option(
      '--loss <name>',
      'dice_ce (Dice + cross-entropy, nnU-Net; default) or dice_focal (Dice + focal, weighting hard voxels)',
      oneOf(['dice_ce', 'dice_focal'] as const),
    )
    .option(
      '--skeleton-recall <weight>',
      'add the skeleton-recall loss at this weight (2D plans; for thin structures such as vessels and membranes; default: none)',
      parseNonNegative,
    )
    .option(
      '--average-weights <from>',
      'average the weights of the epochs after this share of the run (0..1, e.g. 0.75), saved as model_averaged.safetensors and validated beside the best epoch (default: none)',
      parseShare,
    )
    .option(
      '--average-lr <share>',
      'with --average-weights: stochastic weight averaging, the learning rate annealed by cosine to this share of its peak (0..1, e.g. 0.2) when averaging starts and held there (default: the schedule runs to its end)',
      parsePositiveShare,
    )
    .option('--dims <d>', "plan 2d or 3d_fullres (default: the data's dimensionality)", oneOf(['2d', '3d_fullres'] as const))
    .option(
      '--precision <p>',
      'fp32, bf16 (mixed precision), or auto: bf16 where this CPU has native bf16 and a timed step is faster (default auto; plans without a budget stay fp32)',
      oneOf(['fp32', 'bf16', 'auto'] as const),
    );
}
