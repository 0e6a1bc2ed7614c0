/** `medseg plan <dataset>`: fingerprint the dataset and write its plan (editable JSON) where `medseg train` finds it. */
import type { Command } from 'commander';
import { addPlanningOptions } from '../planning-options.ts';
import { planningChoicesOf } from '../../pipeline/planning-choices.ts';
import { log, printResult } from '../output.ts';
import type { PlanningChoices } from '../../pipeline/planning-choices.ts';

export function register(program: Command): void {
  const cmd = program
    .command('plan')
    .description('fingerprint a dataset and write its plan (spacing, patch, network, normalisation, augmentation, training, time budget)')
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder (`medseg import` makes one)')
    .option('--out <file>', 'plan file to write (default: <dataset>/medseg/plan.json, which `medseg preprocess` and `medseg train` read)')
    .option(
      '--recalibrate',
      'time this machine anew instead of reusing the step times remembered from earlier plans (after a hardware or engine change the store starts afresh by itself)',
    );
  addPlanningOptions(cmd).action(async (dataset: string, o: PlanningChoices & { out?: string; recalibrate?: boolean }, c: Command) => {
    const { planDataset } = await import('../../pipeline/plan-dataset.ts');
    const { plan, path } = await planDataset({ dataset, choices: planningChoicesOf(o), out: o.out, log, recalibrate: o.recalibrate });
    const b = plan.budget;
    printResult(c, { plan: path, ...plan }, () =>
      [
        `wrote ${path}`,
        `  ${plan.dims} ${plan.network.architecture}: patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}]`,
        `  target spacing [${plan.targetSpacing.map((v) => v.toFixed(3))}] (z, y, x) mm; normalisation ${plan.normalization.map((n) => n.scheme).join(', ')}`,
        ...(plan.resolution ? [`  resolution: ${plan.resolution.reason}`] : []),
        `  ${plan.epochs} epochs x ${plan.iterationsPerEpoch} iterations${b ? ` to fit ${b.minutes} min (${b.stepSeconds.toFixed(2)} s/step ${b.calibration ? 'measured' : 'predicted'})` : ' (no time budget)'}`,
        `  training: ${plan.training.optimizer}, lr ${plan.training.lr}, ${plan.training.schedule}, loss ${plan.training.loss.name}${plan.training.loss.batchDice ? ' (batch Dice)' : ''}`,
        `  precision: training ${plan.training.precision} (${plan.precisionChoice.reason})`,
        `             inference ${plan.inference.precision}${plan.precisionChoice.inference ? ` (${plan.precisionChoice.inference.reason})` : ''}`,
        `  nnU-Net's own choice: patch [${plan.reference.patchSize}], batch ${plan.reference.batchSize}, features [${plan.reference.features}]`,
      ].join('\n'),
    );
  });
}
