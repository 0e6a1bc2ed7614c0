/** `medseg plan <dataset>`: fingerprint the dataset and write the plan (editable JSON). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { log, parseNonNegative, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('plan')
    .description('fingerprint a dataset and write a plan (spacing, patch, network, normalisation, augmentation, time budget)')
    .argument('<dataset>', 'dataset folder (nnU-Net raw / MSD with dataset.json, or images/ + labels/)')
    .option('--out <file>', 'plan file to write', 'plan.json')
    .option('--minutes <n>', 'training time budget per fold in minutes', parseNonNegative, 30)
    .option('--architecture <name>', 'network (see `medseg train --help` for the list)', 'unet')
    .option('--optimizer <name>', 'sgd (nnU-Net: Nesterov, poly) or adamw (cosine with warm-up)', 'sgd')
    .option('--loss <name>', 'dice_ce (nnU-Net) or dice_focal (the papers)', 'dice_ce')
    .action(async (dataset: string, o: { out: string; minutes: number; architecture: string; optimizer: 'sgd' | 'adamw'; loss: 'dice_ce' | 'dice_focal' }, cmd: Command) => {
      const { readRawDataset } = await import('../../pipeline/raw-dataset.ts');
      const { computeFingerprint } = await import('../../pipeline/prepare.ts');
      const { makePlan } = await import('../../pipeline/planner.ts');
      const ds = readRawDataset(dataset);
      log(`fingerprinting ${ds.cases.length} cases ...`);
      const fp = await computeFingerprint(ds);
      log('timing candidate networks for the budget ...');
      const plan = makePlan(ds, fp, { minutes: o.minutes, architecture: o.architecture, optimizer: o.optimizer, loss: o.loss });
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(plan, null, 2)}\n`);
      printResult(cmd, { plan: out, ...plan }, () =>
        [
          `wrote ${out}`,
          `  ${plan.dims}D ${plan.network.architecture}: patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}]`,
          `  target spacing [${plan.targetSpacing.map((v) => v.toFixed(3))}] (z, y, x) mm; normalisation ${plan.normalization.map((n) => n.scheme).join(', ')}`,
          `  ${plan.training.epochs} epochs x ${plan.training.iterationsPerEpoch} iterations to fit ${plan.budget.minutes} min (${plan.budget.stepSeconds.toFixed(2)} s/step measured)`,
        ].join('\n'),
      );
    });
}
