/**
 * DRIVE retinal vessels (2D RGB): train on the 20 training images (4 held out
 * for model selection) within 20 minutes, evaluate on the 20 test images
 * inside their field-of-view masks: F1 (= Dice), pixel AUC (from the vessel
 * probability), sensitivity, specificity, each the mean over test images.
 * Writes bench/results/drive.json.
 *
 *   npm run bench -- drive [--minutes 20] [--resume] [--skeleton-recall <weight>] [--average-weights <from> [--average-lr <share>]]
 *
 * The levers (planning choices) train in a folder of their own and write
 * bench/results/drive-<lever>.json, leaving drive.json as it is:
 * --skeleton-recall adds the skeleton-recall loss term at that weight (thin
 * structures); --average-weights averages the weights of the epochs after
 * that share of the run, and the result also scores the averaged weights on
 * the same test images (`averaged`), a comparison within one training run;
 * with --average-lr it is stochastic weight averaging (the learning rate
 * annealed to that share of its peak where averaging starts and held;
 * bench/results/drive-swa.json).
 * A run trains anew each time; --resume continues a killed one from its
 * checkpoint.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importDrive } from '../packages/medseg/src/data/import.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { datasetCases, LEVER_OPTIONS, runSeg2d, planSummary, seg2dLevers } from './lib/seg2d.ts';

const here = dirname(fileURLToPath(import.meta.url));

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { minutes: { type: 'string', default: '20' }, out: { type: 'string' }, resume: { type: 'boolean', default: false }, ...LEVER_OPTIONS },
  });
  const { variant, flags, ...levers } = seg2dLevers(values);
  const out = values.out ?? join(repoRoot, `runs/bench-drive${variant}`);
  const dataset = join(out, 'dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) await importDrive(dataPath('drive'), dataset);
  const { training, test } = datasetCases(dataset);
  const ids = training.map((c) => c.id).sort();
  const loadBefore = loadavg();
  const r = await runSeg2d({
    out,
    dataset,
    train: ids.slice(0, 16),
    val: ids.slice(16),
    test,
    minutes: Number(values.minutes),
    labels: [1],
    resume: values.resume,
    ...levers,
  });
  const result = {
    command: `npm run bench -- drive --minutes ${values.minutes}${flags}`,
    skeleton_recall: levers.skeletonRecall ?? 0,
    average_weights_from: levers.averageWeights ?? null,
    average_lr: levers.averageLr ?? null,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
    protocol: 'train 16 of the 20 training images, select on 4, test on the 20 test images inside the FOV masks; metrics averaged over test images',
    plan: planSummary(r.trained.plan),
    trainer: r.trained.folds[0]!.result,
    f1: r.mean(1, 'f1'),
    auc: r.mean(1, 'auc'),
    sensitivity: r.mean(1, 'sensitivity'),
    specificity: r.mean(1, 'specificity'),
    train_minutes: r.trainMinutes,
    per_case: r.perCase.map((p) => ({ id: p.id, ...p.metrics[1] })),
    // The same run's averaged weights on the same test images (the best epoch's weights above are the comparison).
    ...(r.averaged
      ? {
          averaged: {
            epochs: r.trained.folds[0]!.result.averaged?.epochs,
            f1: r.averaged.mean(1, 'f1'),
            auc: r.averaged.mean(1, 'auc'),
            sensitivity: r.averaged.mean(1, 'sensitivity'),
            specificity: r.averaged.mean(1, 'specificity'),
            per_case: r.averaged.perCase.map((p) => ({ id: p.id, ...p.metrics[1] })),
          },
        }
      : {}),
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, `results/drive${variant}.json`), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    JSON.stringify(
      { f1: result.f1, auc: result.auc, sensitivity: result.sensitivity, specificity: result.specificity, train_minutes: result.train_minutes },
      null,
      2,
    ),
  );
}
