/** `medseg plan <dataset>`: fingerprint the dataset and write the plan (editable JSON). */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { log, parseNonNegative, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('plan')
    .description('fingerprint a dataset and write a plan (spacing, patch, network, normalisation, augmentation, time budget)')
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder (`medseg import` makes one)')
    .option('--out <file>', 'plan file to write', 'plan.json')
    .option('--minutes <n>', 'training time budget per fold in minutes (0: nnU-Net sizes and length)', parseNonNegative, 30)
    .option('--architecture <name>', 'network: unet, attention-unet, unet++, resunet, r2unet, transunet, swin-unetr, hybridnet', 'unet')
    .option('--optimizer <name>', 'sgd (nnU-Net: Nesterov, poly) or adamw (cosine with warm-up)', 'sgd')
    .option('--loss <name>', 'dice_ce (nnU-Net) or dice_focal (the papers)', 'dice_ce')
    .action(async (dataset: string, o: { out: string; minutes: number; architecture: string; optimizer: 'sgd' | 'adamw'; loss: 'dice_ce' | 'dice_focal' }, cmd: Command) => {
      const { readDataset } = await import('../../data/dataset.ts');
      const { computeFingerprint } = await import('../../data/fingerprint.ts');
      const { makePlan, savePlan } = await import('../../data/plan.ts');
      const { defaultTraining, inferenceSettings } = await import('../../pipeline/training-config.ts');
      const { timedStepSeconds } = await import('../../pipeline/step-timer.ts');
      const ds = readDataset(dataset);
      log(`fingerprinting ${ds.training.length} cases ...`);
      const fp = await computeFingerprint(ds);
      if (o.minutes > 0) log('timing this machine for the budget ...');
      const plan = await makePlan(fp, { architecture: o.architecture, budget: o.minutes > 0 ? { minutes: o.minutes } : undefined, stepTimer: timedStepSeconds });
      plan.training = defaultTraining(plan, { optimizer: o.optimizer, loss: o.loss });
      plan.inference = inferenceSettings(plan);
      const out = resolve(o.out);
      await savePlan(out, plan);
      printResult(cmd, { plan: out, ...plan }, () =>
        [
          `wrote ${out}`,
          `  ${plan.dims} ${plan.network.architecture}: patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}]`,
          `  target spacing [${plan.targetSpacing.map((v) => v.toFixed(3))}] (z, y, x) mm; normalisation ${plan.normalization.map((n) => n.scheme).join(', ')}`,
          `  ${plan.epochs} epochs x ${plan.iterationsPerEpoch} iterations${plan.budget ? ` to fit ${plan.budget.minutes} min (${plan.budget.stepSeconds.toFixed(2)} s/step predicted)` : ''}`,
          `  nnU-Net's own choice: patch [${plan.reference.patchSize}], batch ${plan.reference.batchSize}, features [${plan.reference.features}]`,
        ].join('\n'),
      );
    });
}
