/**
 * The main job: the whole chain on a default dataset with a short budget.
 * MSD hippocampus from the data directory (MEDSEG_DATA, default ../shared/data)
 * when present, otherwise a generated phantom dataset. Trains one model on a
 * fixed split, predicts the held-out cases, evaluates them and writes the HTML
 * report, then says where everything went.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writePhantomDataset } from '../demo/phantom.ts';
import { evaluateFolder } from '../eval/evaluate-folder.ts';
import { writeReport } from '../eval/report/html-report.ts';
import { defaultDataRoot } from '../util/data-root.ts';
import { HIPPOCAMPUS_SPLIT } from '../demo/hippocampus-split.ts';
import { predictPath } from './predict-folder.ts';
import { readDataset } from '../data/dataset.ts';
import { importMsdHippocampus } from '../data/import.ts';
import { trainModel } from './train-model.ts';
import { foldDir, foldFile } from '../plan/model-folder.ts';
import { DEMO_MINUTES } from './planning-choices.ts';

export interface DemoResult {
  dataset: string;
  modelDir: string;
  predictions: string;
  evaluation: { meanDice: Record<string, number> };
  report: string;
}

export async function runDemo(o: { out?: string; minutes?: number; log?: (s: string) => void } = {}): Promise<DemoResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const out = resolve(o.out ?? 'runs/demo');
  mkdirSync(out, { recursive: true });
  const dataRoot = defaultDataRoot();
  const hippo = join(dataRoot, 'msd-hippocampus');
  let dataset: string;
  let split: { train: string[]; val: string[] };
  if (existsSync(hippo)) {
    dataset = join(out, 'hippocampus');
    if (!existsSync(join(dataset, 'dataset.json'))) await importMsdHippocampus(hippo, dataset);
    const s = HIPPOCAMPUS_SPLIT;
    // A short demo: all training cases, the first 10 held-out cases predicted and scored.
    split = { train: [...s.train], val: s.validation.slice(0, 10) };
    log(`demo dataset: MSD hippocampus from ${hippo} (imported to ${dataset})`);
  } else {
    dataset = join(out, 'phantom');
    if (!existsSync(join(dataset, 'dataset.json'))) await writePhantomDataset(dataset, 24);
    const ids = readDataset(dataset).training.map((c) => c.id);
    split = { train: ids.slice(0, 18), val: ids.slice(18) };
    log(`demo dataset: no shared data at ${dataRoot}; generated a phantom dataset at ${dataset}`);
  }
  const modelDir = join(out, 'model');
  await trainModel({
    dataset,
    out: modelDir,
    split,
    minutes: o.minutes ?? DEMO_MINUTES,
    resume: existsSync(foldFile(foldDir(modelDir, 0), 'checkpoint')),
    log,
  });

  // Held-out images and references side by side for predict + evaluate.
  const ds = readDataset(dataset);
  const heldOut = ds.training.filter((c) => split.val.includes(c.id));
  const imgDir = join(out, 'heldout/images');
  const refDir = join(out, 'heldout/labels');
  rmSync(join(out, 'heldout'), { recursive: true, force: true });
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(refDir, { recursive: true });
  for (const c of heldOut) {
    const ending = ds.fileEnding;
    copyFileSync(c.imagePaths[0]!, join(imgDir, `${c.id}${ending}`));
    copyFileSync(c.labelPath!, join(refDir, `${c.id}${ending}`));
  }
  const predictions = join(out, 'predictions');
  const predicted = await predictPath({ model: modelDir, input: imgDir, out: predictions });
  const ev = await evaluateFolder({ predictions, references: refDir, labels: 'auto', model: 'demo U-Net' });
  const meanDice: Record<string, number> = {};
  for (const s of ev.summary) if (s.metric === 'dice') meanDice[String(s.label)] = s.mean;
  const report = join(out, 'report.html');
  const times = Object.fromEntries(
    predicted.outputs.map((x) => [
      x.input
        .split('/')
        .pop()!
        .replace(/\.(nii\.gz|nii|nrrd|png)$/, ''),
      x.seconds * 1000,
    ]),
  );
  await writeReport(report, {
    title: 'medseg demo',
    dataset: ds.name,
    rows: ev.rows,
    models: [
      { name: ev.model, architecture: '3D U-Net (nnU-Net style)', architectureType: 'CNN', inferenceTimesMs: times, modelCardHref: 'model/model-card.md' },
    ],
  });
  return { dataset, modelDir, predictions, evaluation: { meanDice }, report };
}
