/**
 * The comparison study: every architecture of the zoo trained on the same
 * split with the same time budget, evaluated with the same code, on MSD
 * hippocampus (3D) and DRIVE (2D); writes per-model summaries and one HTML
 * report with the comparison table and plots to bench/results/study/.
 * The numbers are whatever they honestly are.
 *
 *   npm run study -- [--minutes 30] [--drive-minutes 20] [--architectures unet,hybridnet] [--datasets hippocampus,drive]
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importDrive, importMsdHippocampus } from '../packages/medseg/src/data/import.ts';
import { evaluateFolder } from '../packages/medseg/src/eval/evaluate-folder.ts';
import { compareToOthers, type ModelComparison } from '../packages/medseg/src/eval/comparison.ts';
import { jsonNumberReplacer } from '../packages/medseg/src/eval/metrics_rows.ts';
import { addComparisonToModelCard } from '../packages/medseg/src/eval/report/modelcard.ts';
import { distinct, type MetricRow } from '../packages/medseg/src/eval/statistics/rows.ts';
import { renderVolumeOverlayPng } from '../packages/medseg/src/eval/report/overlay.ts';
import type { CalibrationBins } from '../packages/medseg/src/eval/probabilistic.ts';
import { writeReport } from '../packages/medseg/src/eval/report/html-report.ts';
import { readVolume } from '../packages/medseg/src/io/read.ts';
import { voxelCount } from '../packages/medseg/src/io/volume.ts';
import { architectureInfo, countMACs, countParameters, createNetwork, listArchitectures } from '../packages/medseg/src/models/registry.ts';
import { foldDir, foldFile, modelCardPaths, modelFile } from '../packages/medseg/src/plan/model-folder.ts';
import { loadPlan } from '../packages/medseg/src/plan/store.ts';
import type { Plan } from '../packages/medseg/src/plan/types.ts';
import { planDataset } from '../packages/medseg/src/pipeline/plan-dataset.ts';
import { predictPath } from '../packages/medseg/src/pipeline/predict-folder.ts';
import { trainModel } from '../packages/medseg/src/pipeline/train-model.ts';
import type { TrainResult } from '../packages/medseg/src/train/trainer.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { datasetCases, runSeg2d } from './lib/seg2d.ts';
import { stageHeldOut } from './lib/stage-cases.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface ModelEntry {
  name: string;
  architecture: string;
  architectureType: string;
  parameters: number;
  gmacs: number;
  inferenceTimesMs: Record<string, number>;
  dataset: string;
  /** Minutes this architecture trained (the fold's clock, a resumed run's earlier time included), and how the run ended. */
  minutes: number;
  epochs: number;
  bestEpoch: number;
  stoppedBy: TrainResult['stoppedBy'];
}

/** The training record a study row keeps. */
function trainingOf(r: TrainResult): Pick<ModelEntry, 'minutes' | 'epochs' | 'bestEpoch' | 'stoppedBy'> {
  return { minutes: r.minutes, epochs: r.epochsRun, bestEpoch: r.bestEpoch, stoppedBy: r.stoppedBy };
}

/** Files behind one case's overlay; `channel` picks the image channel shown (channels are separate files, nnU-Net style; DRIVE shows its green file, where vessels contrast best). */
interface CaseFiles {
  image: string;
  reference: string;
  prediction: string;
  channel: number;
}

interface StudyEntry {
  rows: MetricRow[];
  model: ModelEntry;
  calibration: CalibrationBins | null;
  files: Record<string, CaseFiles>;
  /** The trained model's folder (plan, weights, model card). */
  modelDir: string;
}

/**
 * One plan per dataset and budget, made for U-Net (with a timed real step)
 * and given to every architecture with only the network's name changed: all
 * models see the same patch, batch, widths, augmentation and time, and a
 * slower architecture gets fewer iterations (the trainer stops when the
 * budget is spent, its LR decay following the clock). A plan per
 * architecture would let the noise of the throughput measurement give each
 * model a different patch size, and the comparison would then measure patch
 * sizes as much as architectures.
 */
async function sharedPlan(ds: string, dataset: string, minutes: number, work: string): Promise<Plan> {
  const path = join(work, `${ds}-plan-${minutes}min.json`);
  if (existsSync(path)) return loadPlan(path);
  return (await planDataset({ dataset, choices: { architecture: 'unet', minutes }, out: path })).plan;
}

function planFor(shared: Plan, arch: string): Plan {
  return { ...shared, network: { ...shared.network, architecture: arch } };
}

async function hippocampus(arch: string, minutes: number, work: string, out: string): Promise<StudyEntry> {
  const split = HIPPOCAMPUS_SPLIT;
  const source = dataPath('msd-hippocampus');
  const dataset = join(work, 'hippocampus-dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) await importMsdHippocampus(source, dataset);
  const modelDir = join(out, 'model');
  const given = planFor(await sharedPlan('hippocampus', dataset, minutes, work), arch);
  const trained = await trainModel({
    dataset,
    out: modelDir,
    split: { train: split.train, val: split.validation },
    plan: given,
    resume: existsSync(foldFile(foldDir(modelDir, 0), 'checkpoint')),
  });
  const { imgDir, refDir } = stageHeldOut(source, split.validation, out);
  const predDir = join(out, 'predictions');
  const pred = await predictPath({ model: modelDir, input: imgDir, out: predDir });
  const name = `${arch} (3D)`;
  const ev = await evaluateFolder({ predictions: predDir, references: refDir, labels: [1, 2], model: name });
  const plan = loadPlan(modelFile(modelDir, 'plan'));
  const net = createNetwork(plan.network);
  const model: ModelEntry = {
    name,
    architecture: `3D ${arch}`,
    architectureType: architectureInfo(arch).type,
    parameters: countParameters(net),
    gmacs: countMACs(net, plan.patchSize) / 1e9,
    inferenceTimesMs: Object.fromEntries(pred.outputs.map((o) => [o.input.split('/').pop()!.replace('.nii.gz', ''), o.seconds * 1000])),
    dataset: 'MSD hippocampus (34 validation cases)',
    ...trainingOf(trained.folds[0]!.result),
  };
  net.dispose();
  const files = Object.fromEntries(
    split.validation.map((id) => [
      id,
      { image: join(imgDir, `${id}.nii.gz`), reference: join(refDir, `${id}.nii.gz`), prediction: join(predDir, `${id}.nii.gz`), channel: 0 },
    ]),
  );
  return { rows: ev.rows.map((r) => ({ ...r, model: name })) as MetricRow[], model, calibration: null, files, modelDir };
}

async function drive(arch: string, minutes: number, work: string, out: string): Promise<StudyEntry> {
  const dataset = join(work, 'drive-dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) await importDrive(dataPath('drive'), dataset);
  const { training, test } = datasetCases(dataset);
  const ids = training.map((c) => c.id).sort();
  const plan = planFor(await sharedPlan('drive', dataset, minutes, work), arch);
  const r = await runSeg2d({
    out,
    dataset,
    train: ids.slice(0, 16),
    val: ids.slice(16),
    test,
    minutes,
    plan,
    labels: [1],
    distances: true,
    tta: false,
    resume: true,
  });
  const name = `${arch} (2D)`;
  const net = createNetwork(plan.network);
  const model: ModelEntry = {
    name,
    architecture: `2D ${arch}`,
    architectureType: architectureInfo(arch).type,
    parameters: countParameters(net),
    gmacs: countMACs(net, plan.patchSize) / 1e9,
    inferenceTimesMs: Object.fromEntries(r.perCase.map((p) => [p.id, p.seconds * 1000])),
    dataset: 'DRIVE (20 test images, inside FOV; no mirroring TTA)',
    ...trainingOf(r.trained.folds[0]!.result),
  };
  net.dispose();
  const rows = r.perCase.map((p) => ({ model: name, case: p.id, label: 1, ...p.metrics[1] })) as MetricRow[];
  const files = Object.fromEntries(
    test.map((c, i) => [c.id, { image: c.imagePaths[1] ?? c.imagePaths[0]!, reference: c.labelPath!, prediction: r.perCase[i]!.prediction, channel: 0 }]),
  );
  return { rows, model, calibration: r.calibration, files, modelDir: join(out, 'model') };
}

/** JSON with non-finite numbers (an empty prediction's HD95) as strings, which metricValue reads back. */
function jsonText(v: unknown): string {
  return `${JSON.stringify(v, jsonNumberReplacer, 2)}\n`;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: 'string', default: '30' },
      'drive-minutes': { type: 'string', default: '20' },
      architectures: {
        type: 'string',
        default: listArchitectures()
          .map((a) => a.name)
          .join(','),
      },
      datasets: { type: 'string', default: 'hippocampus,drive' },
      work: { type: 'string', default: join(repoRoot, 'runs/study') },
    },
  });
  const archs = values.architectures!.split(',');
  const datasets = values.datasets!.split(',');
  const outDir = join(here, 'results/study');
  mkdirSync(outDir, { recursive: true });
  for (const ds of datasets) {
    const rows: MetricRow[] = [];
    const models: ModelEntry[] = [];
    const failures: { architecture: string; error: string }[] = [];
    const entries = new Map<string, StudyEntry>();
    const command = `npm run study -- ${args.join(' ')}`.trim();
    const minutes = Number(ds === 'hippocampus' ? values.minutes : values['drive-minutes']);
    const writeSummary = (extra: Record<string, unknown> = {}) =>
      writeFileSync(
        join(outDir, `${ds}.json`),
        jsonText({
          command,
          date: new Date().toISOString(),
          machine: { cpu: cpus()[0]?.model, cores: cpus().length },
          budget: { trainingMinutesPerModel: minutes },
          models,
          failures,
          rows,
          ...extra,
        }),
      );
    for (const arch of archs) {
      // One architecture's result per file in the work folder: a killed study
      // resumes at the first architecture without one, and one architecture
      // failing (recorded below) does not cost the others their results.
      const out = join(values.work!, `${ds}-${arch}-${minutes}min`);
      const done = join(out, 'study-result.json');
      let r: StudyEntry;
      if (existsSync(done)) {
        r = JSON.parse(readFileSync(done, 'utf8')) as StudyEntry;
      } else {
        try {
          r = ds === 'hippocampus' ? await hippocampus(arch, minutes, values.work!, out) : await drive(arch, minutes, values.work!, out);
        } catch (e) {
          process.stderr.write(`study: ${arch} on ${ds} failed: ${(e as Error).stack ?? e}\n`);
          failures.push({ architecture: arch, error: (e as Error).message });
          continue;
        }
        writeFileSync(done, jsonText(r));
      }
      rows.push(...r.rows);
      models.push(r.model);
      entries.set(r.model.name, r);
      writeSummary();
    }
    // HybridNet compared with every other architecture on the same cases
    // (paired Wilcoxon on Dice, Holm-adjusted),
    // written into its model card, and the card kept beside the study results.
    const focus = models.find((m) => m.architecture.endsWith(' hybridnet'));
    if (focus && models.length > 1) {
      const comparison: ModelComparison[] = distinct(rows, 'label').map((label) => compareToOthers(rows, focus.name, label, 'dice'));
      const modelDir = entries.get(focus.name)!.modelDir;
      addComparisonToModelCard(modelCardPaths(modelDir), {
        context: `Comparison study on ${focus.dataset}: ${models.length} architectures, each trained ${minutes} min on ${cpus().length} CPU cores with the same split, the same plan (patch, batch, widths, augmentation; made once for U-Net) and the same evaluation code (\`${command}\`). Budgets this short favour models that converge fast; they say nothing about longer training.`,
        results: comparison,
      });
      for (const ext of ['md', 'json']) copyFileSync(join(modelDir, `model-card.${ext}`), join(outDir, `hybridnet-${ds}-model-card.${ext}`));
      for (const c of comparison) console.log(c.verdict);
      writeSummary({ hybridnetComparison: comparison });
    }
    await writeReport(join(outDir, `${ds}.html`), {
      title: `medseg comparison study: ${ds}`,
      dataset: models[0]?.dataset,
      rows,
      models: models.map((m) => ({
        name: m.name,
        architecture: m.architecture,
        architectureType: m.architectureType,
        parameters: m.parameters,
        inferenceTimesMs: m.inferenceTimesMs,
      })),
      summaryMetrics: ds === 'hippocampus' ? ['dice', 'iou', 'hd95'] : ['dice', 'iou', 'hd95', 'auc'],
      calibration: Object.fromEntries([...entries].filter(([, e]) => e.calibration).map(([name, e]) => [name, e.calibration!])),
      renderOverlay: async (sel) => {
        const f = entries.get(sel.model)?.files[sel.case];
        if (!f) throw new Error(`study: no files for ${sel.model} / ${sel.case}`);
        const [img, ref, pred] = await Promise.all([readVolume(f.image), readVolume(f.reference), readVolume(f.prediction)]);
        const n = voxelCount(img);
        const image = img.data.subarray(f.channel * n, (f.channel + 1) * n);
        // Full-size photographs (DRIVE, 565x584) at half resolution and 32 grey
        // levels, so a report with an overlay per model and case stays a few MB.
        const large = Math.max(img.size[0], img.size[1]) > 400;
        return renderVolumeOverlayPng(image, ref.data, pred.data, img.size, {
          label: typeof sel.label === 'number' ? sel.label : undefined,
          ...(large ? { downsample: 2, greyLevels: 32 } : {}),
        }).png;
      },
    });
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main(process.argv.slice(2));
