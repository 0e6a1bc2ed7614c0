/**
 * The pipeline's accuracy benchmark on MSD hippocampus: train a 3D model on the
 * fixed split (packages/medseg/src/demo/hippocampus-split.ts: 140 train / 34 validation) with a
 * 30-minute training budget (plan + trainer honour it), predict the 34
 * validation cases with sliding window + mirroring TTA, and score Dice per
 * class on the original grid. Writes bench/results/hippocampus.json.
 *
 *   npm run bench -- hippocampus [--minutes 30] [--architecture unet] [--out runs/bench-hippocampus]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as torch from '../packages/torch/src/index.ts';
import { evaluateFolder } from '../packages/medseg/src/eval/evaluate-folder.ts';
import { predictPath } from '../packages/medseg/src/pipeline/predict-folder.ts';
import { trainModel } from '../packages/medseg/src/pipeline/train-model.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { stageHeldOut } from './lib/stage-cases.ts';
import { importMsdHippocampus } from '../packages/medseg/src/data/import.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';

const here = dirname(fileURLToPath(import.meta.url));

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: 'string', default: '30' },
      architecture: { type: 'string', default: 'unet' },
      out: { type: 'string', default: join(repoRoot, 'runs/bench-hippocampus') },
      resume: { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  const split = HIPPOCAMPUS_SPLIT;
  const source = dataPath('msd-hippocampus');
  const out = values.out!;
  const dataset = join(out, 'dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) await importMsdHippocampus(source, dataset);
  const modelDir = join(out, 'model');
  const loadBefore = loadavg();
  const t0 = Date.now();
  const trained = await trainModel({
    dataset,
    out: modelDir,
    split: { train: split.train, val: split.validation },
    minutes,
    architecture: values.architecture,
    resume: values.resume,
  });
  const trainMinutes = (Date.now() - t0) / 60000;

  const { imgDir, refDir } = stageHeldOut(source, split.validation, out);
  const predDir = join(out, 'predictions');
  const pred = await predictPath({ model: modelDir, input: imgDir, out: predDir });
  const ev = await evaluateFolder({ predictions: predDir, references: refDir, labels: [1, 2], model: `hippocampus ${values.architecture}` });
  const dice = (l: number) => ev.summary.find((s) => s.metric === 'dice' && Number(s.label) === l)!;
  const times = pred.outputs.map((o) => o.seconds).sort((a, b) => a - b);
  const result = {
    command: `npm run bench -- hippocampus --minutes ${minutes} --architecture ${values.architecture}`,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, threads: torch.getNumThreads(), loadavgBefore: loadBefore, loadavgAfter: loadavg() },
    split: 'packages/medseg/src/demo/hippocampus-split.ts (140 train / 34 validation)',
    plan: {
      patchSize: trained.plan.patchSize,
      batchSize: trained.plan.batchSize,
      features: trained.plan.network.features,
      epochs: trained.plan.epochs,
      iterationsPerEpoch: trained.plan.iterationsPerEpoch,
      predictedStepSeconds: trained.plan.budget?.stepSeconds,
      training: trained.plan.training,
    },
    trainer: trained.folds[0]!.result,
    postprocessing: trained.postprocessing,
    dice_anterior: dice(1).mean,
    dice_posterior: dice(2).mean,
    dice_mean: (dice(1).mean + dice(2).mean) / 2,
    dice_ci: { anterior: dice(1).ci, posterior: dice(2).ci },
    hd95_mm: Object.fromEntries([1, 2].map((l) => [l, ev.summary.find((s) => s.metric === 'hd95' && Number(s.label) === l)?.median])),
    train_minutes: trainMinutes,
    infer_s_per_case: times[Math.floor(times.length / 2)],
    infer_note: 'median seconds per case: read, preprocess, sliding window with mirroring TTA (8 passes), resample back, write',
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results/hippocampus.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    JSON.stringify(
      {
        dice_anterior: result.dice_anterior,
        dice_posterior: result.dice_posterior,
        dice_mean: result.dice_mean,
        train_minutes: result.train_minutes,
        infer_s_per_case: result.infer_s_per_case,
      },
      null,
      2,
    ),
  );
}
