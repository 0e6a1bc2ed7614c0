/**
 * DRIVE retinal vessels (2D RGB): train on the 20 training images (4 held out
 * for model selection) within 20 minutes, evaluate on the 20 test images
 * inside their field-of-view masks: F1 (= Dice), pixel AUC (from the vessel
 * probability), sensitivity, specificity, each the mean over test images.
 * Writes bench/results/drive.json.
 *
 *   npm run bench -- drive [--minutes 20] [--skeleton-recall <weight>]
 *
 * With --skeleton-recall the loss gets the skeleton-recall term at that weight
 * (a thin-structure lever): the run trains in its own folder and writes
 * bench/results/drive-skeleton-recall.json, leaving drive.json as it is.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importDrive } from '../packages/medseg/src/data/import.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { datasetCases, runSeg2d, planSummary } from './lib/seg2d.ts';

const here = dirname(fileURLToPath(import.meta.url));

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { minutes: { type: 'string', default: '20' }, out: { type: 'string' }, 'skeleton-recall': { type: 'string' } },
  });
  const skeletonRecall = values['skeleton-recall'] === undefined ? undefined : Number(values['skeleton-recall']);
  if (skeletonRecall !== undefined && !(skeletonRecall > 0)) throw new Error(`--skeleton-recall must be a weight > 0, got ${values['skeleton-recall']}`);
  const variant = skeletonRecall ? '-skeleton-recall' : '';
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
    ...(skeletonRecall ? { skeletonRecall } : {}),
  });
  const result = {
    command: `npm run bench -- drive --minutes ${values.minutes}${skeletonRecall ? ` --skeleton-recall ${skeletonRecall}` : ''}`,
    skeleton_recall: skeletonRecall ?? 0,
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
