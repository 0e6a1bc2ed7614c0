/**
 * The whole training job for one dataset: fingerprint, plan, preprocess, and
 * for every requested fold train (trainer.ts), then decide postprocessing on
 * the folds' validation cases and write the model card. The model folder:
 *
 *   plan.json  fingerprint.json  splits.json  postprocessing.json
 *   model-card.md  model-card.json  validation.csv
 *   fold_<k>/ model_best.safetensors  model_final.safetensors
 *             checkpoint_latest.safetensors  log.jsonl
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { xyzFromZyx } from '../data/axes.ts';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { computeFingerprint, loadFingerprint, saveFingerprint, type Fingerprint } from '../data/fingerprint.ts';
import { BatchLoader } from '../data/loader.ts';
import { loadPlan, makePlan, savePlan, type Plan } from '../data/plan.ts';
import { loadPreprocessed, preprocessDataset } from '../data/preprocess.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { evaluateCase } from '../eval/metrics.ts';
import { rowsToCsv, toRows, type MetricRow } from '../eval/metrics_rows.ts';
import type { MetricRow as StatRow } from '../eval/statistics.ts';
import { writeModelCard } from '../eval/modelcard.ts';
import { decidePostprocessing, applyPostprocessing } from '../infer/postprocess.ts';
import { architectureInfo, countParameters, createNetwork } from '../models/registry.ts';
import { BEST_WEIGHTS, predictCaseLabels, train, type TrainResult, type TrainingData } from '../train/trainer.ts';
import { createProgress, type ProgressReporter } from '../train/progress.ts';
import { kFoldSplits, type Split } from './splits.ts';
import { timedStepSeconds } from './step-timer.ts';
import { defaultTraining, inferenceSettings, trainerConfig } from './training-config.ts';

export interface TrainModelOptions {
  /** An nnU-Net / MSD raw dataset folder (see data/dataset.ts; `medseg import` makes one). */
  dataset: string;
  out: string;
  /** A plan file or a plan; otherwise one is made (architecture, minutes). */
  plan?: string | Plan;
  architecture?: string;
  /** Training budget per fold in minutes when planning (default 30). */
  minutes?: number;
  optimizer?: 'sgd' | 'adamw';
  loss?: 'dice_ce' | 'dice_focal';
  /** Folds to train (default [0]); 'all' = every fold. */
  folds?: number[] | 'all';
  nFolds?: number;
  /** An explicit split instead of k-fold (one "fold 0"). */
  split?: Split;
  resume?: boolean;
  seed?: number;
  /** Loader worker threads (default 1: the trainer's libtorch threads want the cores). */
  workers?: number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
}

export interface TrainModelResult {
  modelDir: string;
  plan: Plan;
  folds: { fold: number; result: TrainResult; valDice: number[] }[];
  postprocessing: number[];
  validationRows: MetricRow[];
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(path, `${JSON.stringify(v, null, 2)}\n`);
}

/** Training batches from the worker loader; batch k of the run is epoch * I + iteration, so a resumed run continues the same sequence. */
function loaderData(dir: string, ids: string[], plan: Plan, seed: number, workers: number, validation: PreprocessedCase[]): TrainingData {
  let loader: BatchLoader | null = null;
  let expected = -1;
  return {
    validation,
    async nextBatch(epoch, it) {
      const k = epoch * plan.iterationsPerEpoch + it;
      if (!loader || k !== expected) {
        await loader?.close();
        loader = new BatchLoader({ dir, ids, plan, seed, workers, start: k });
      }
      expected = k + 1;
      const b = await loader.next();
      return torch.tidy(() => ({ image: torch.tensor(b.image, b.shape), label: torch.tensor(b.label, [b.shape[0]!, ...b.shape.slice(2)]).long() }));
    },
    async close() {
      await loader?.close();
    },
  };
}

export async function trainModel(o: TrainModelOptions): Promise<TrainModelResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  mkdirSync(o.out, { recursive: true });
  const ds: Dataset = readDataset(o.dataset);
  log(`dataset ${ds.name}: ${ds.training.length} labelled cases, channels ${ds.channels.join(', ')}`);

  const fpPath = join(o.out, 'fingerprint.json');
  let fp: Fingerprint;
  if (o.resume && existsSync(fpPath)) fp = loadFingerprint(fpPath);
  else {
    fp = await computeFingerprint(ds);
    await saveFingerprint(fpPath, fp);
  }
  const planPath = join(o.out, 'plan.json');
  let plan: Plan;
  if (typeof o.plan === 'string') plan = loadPlan(o.plan);
  else if (o.plan) plan = o.plan;
  else if (o.resume && existsSync(planPath)) plan = loadPlan(planPath);
  else plan = await makePlan(fp, { architecture: o.architecture, budget: { minutes: o.minutes ?? 30 }, stepTimer: timedStepSeconds });
  plan.training ??= defaultTraining(plan, { optimizer: o.optimizer, loss: o.loss });
  plan.inference ??= inferenceSettings(plan);
  await savePlan(planPath, plan);
  log(
    `plan: ${plan.dims} ${plan.network.architecture}, patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}], ` +
      `${plan.epochs} epochs x ${plan.iterationsPerEpoch} iterations${plan.budget ? ` (budget ${plan.budget.minutes} min, ~${plan.budget.stepSeconds.toFixed(2)} s/step ${plan.budget.calibration ? 'measured' : 'predicted'})` : ''}`,
  );

  const ids = ds.training.map((c) => c.id);
  const splits = o.split ? [o.split] : kFoldSplits(ids, o.nFolds ?? 5, 12345);
  writeJson(join(o.out, 'splits.json'), splits);
  const folds = o.folds === 'all' ? splits.map((_, i) => i) : (o.folds ?? [0]);
  const cacheDir = join(o.out, 'preprocessed');
  const t0 = Date.now();
  const pre = await preprocessDataset(ds, plan, cacheDir);
  log(`preprocessed ${pre.computed} of ${pre.ids.length} cases (the rest cached) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const results: TrainModelResult['folds'] = [];
  const ppStats = new Map<number, { without: number[]; with: number[] }>();
  const rows: MetricRow[] = [];
  const seed = o.seed ?? 12345;
  const cfg = trainerConfig(plan);
  let parameters = 0;
  for (const fold of folds) {
    const split = splits[fold];
    if (!split) throw new Error(`fold ${fold} does not exist (${splits.length} folds)`);
    for (const id of [...split.train, ...split.val]) if (!ids.includes(id)) throw new Error(`split names case ${id}, which the dataset does not have`);
    const foldDir = join(o.out, `fold_${fold}`);
    torch.manualSeed(seed + fold);
    const net = createNetwork(plan.network);
    const validation = await Promise.all(split.val.map((id) => loadPreprocessed(cacheDir, id)));
    parameters = countParameters(net);
    log(`fold ${fold}: ${split.train.length} training, ${validation.length} validation cases; ${parameters} parameters`);
    const data = loaderData(cacheDir, split.train, plan, seed + fold, o.workers ?? 1, validation);
    const result = await train(net, cfg, data, foldDir, { resume: o.resume, progress: o.progress ?? createProgress('auto') });

    // Final validation with the best weights and the plan's TTA, with and without postprocessing.
    const { tensors } = torch.loadSafetensors(join(foldDir, BEST_WEIGHTS));
    net.loadStateDict(tensors);
    for (const t of tensors.values()) t.dispose();
    net.eval();
    const K = plan.network.numClasses;
    const foreground = Array.from({ length: K - 1 }, (_, i) => i + 1);
    for (const c of validation) {
      const pred = predictCaseLabels(net, c, plan.patchSize, plan.inference);
      const size = xyzFromZyx(c.shape);
      const spacing = xyzFromZyx(c.spacing);
      const ev = evaluateCase(pred, c.label!, { size, spacing, labels: foreground, case: c.id });
      for (const r of toRows(ev)) rows.push({ ...r, fold });
      for (const k of foreground) {
        const withPP = applyPostprocessing(Uint8Array.from(pred), size, [k]);
        const dWith = evaluateCase(withPP, c.label!, { size, spacing, labels: [k], distances: false }).classes[0]!.dice as number;
        const dWithout = ev.classes.find((m) => m.label === k)!.dice as number;
        const s = ppStats.get(k) ?? { without: [], with: [] };
        s.without.push(dWithout);
        s.with.push(dWith);
        ppStats.set(k, s);
      }
    }
    const valDice = foreground.map((k) => {
      const d = rows.filter((r) => r.fold === fold && r.label === k).map((r) => Number(r.dice)).filter(Number.isFinite);
      return d.reduce((a, b) => a + b, 0) / Math.max(1, d.length);
    });
    log(`fold ${fold}: validation Dice (best weights, TTA) ${valDice.map((d) => d.toFixed(4)).join(' / ')}`);
    results.push({ fold, result, valDice });
    net.dispose();
  }
  const postprocessing = decidePostprocessing(ppStats);
  writeJson(join(o.out, 'postprocessing.json'), { keepLargestComponent: postprocessing, evidence: Object.fromEntries(ppStats) });
  writeFileSync(join(o.out, 'validation.csv'), rowsToCsv(rows));
  const info = architectureInfo(plan.network.architecture);
  const modelName = `${ds.name} ${info.name}`;
  writeModelCard(o.out, {
    modelName,
    architecture: `${plan.network.dims}D ${info.name}`,
    architectureType: info.type,
    parameters,
    data: { dataset: ds.name, cases: ds.training.length, modality: ds.channels.join(', '), labels: plan.labels },
    plan: {
      patchSize: plan.patchSize,
      targetSpacing: plan.targetSpacing,
      batchSize: plan.batchSize,
      features: plan.network.features,
      normalization: plan.normalization.map((n) => n.scheme).join(', '),
    },
    training: {
      epochs: Math.max(...results.map((r) => r.result.epochsRun)),
      iterations: Math.max(...results.map((r) => r.result.epochsRun)) * plan.iterationsPerEpoch,
      wallTimeHours: results.reduce((a, r) => a + r.result.minutes, 0) / 60,
      budget: plan.budget ? `${plan.budget.minutes} min per fold on ${plan.budget.cores} CPU cores` : 'nnU-Net default length',
      seed,
    },
    // Scored on the preprocessed grid of each fold's validation cases.
    validation: rows.map((r): StatRow => ({ ...r, model: modelName })),
  });
  return { modelDir: o.out, plan, folds: results, postprocessing, validationRows: rows };
}
