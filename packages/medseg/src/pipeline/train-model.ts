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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { PreprocessedCase } from '../data/types.ts';
import { evaluateCase } from '../eval/metrics.ts';
import { rowsToCsv, toRows, type MetricRow } from '../eval/metrics_rows.ts';
import { writeModelCard } from '../eval/modelcard.ts';
import { decidePostprocessing, applyPostprocessing } from '../infer/postprocess.ts';
import { architectureInfo, countParameters, createNetwork } from '../models/registry.ts';
import { predictCaseLabels, train, type TrainResult } from '../train/trainer.ts';
import { createProgress, type ProgressReporter } from '../train/progress.ts';
import { PatchSampler } from './batches.ts';
import { computeFingerprint, loadCase, preprocessCase, type Fingerprint } from './prepare.ts';
import { loadPlan, makePlan, type Plan, type PlanOptions } from './planner.ts';
import { readRawDataset, type RawDataset } from './raw-dataset.ts';
import { kFoldSplits, type Split } from './splits.ts';

export interface TrainModelOptions {
  dataset: string;
  out: string;
  /** A plan file, a plan, or options to make one. */
  plan?: string | Plan;
  planOptions?: PlanOptions;
  /** Folds to train (default [0]); 'all' = every fold. */
  folds?: number[] | 'all';
  nFolds?: number;
  /** An explicit split instead of k-fold (one "fold 0"). */
  split?: Split;
  resume?: boolean;
  seed?: number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Use only the first N training cases (quick runs). */
  limitCases?: number;
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

export async function preprocessAll(ds: RawDataset, plan: Plan, ids: Set<string>, log: (s: string) => void): Promise<Map<string, PreprocessedCase>> {
  const out = new Map<string, PreprocessedCase>();
  const t0 = Date.now();
  for (const c of ds.cases) {
    if (!ids.has(c.id)) continue;
    const { images, label } = await loadCase(c);
    out.set(c.id, preprocessCase(c.id, images, label, { targetSpacing: plan.targetSpacing, normalization: plan.normalization }));
  }
  log(`preprocessed ${out.size} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

export async function trainModel(o: TrainModelOptions): Promise<TrainModelResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  mkdirSync(o.out, { recursive: true });
  const ds = readRawDataset(o.dataset);
  if (o.limitCases) ds.cases = ds.cases.slice(0, o.limitCases);
  log(`dataset ${ds.name}: ${ds.cases.length} labelled cases, channels ${ds.channels.join(', ')}`);

  const fpPath = join(o.out, 'fingerprint.json');
  let fp: Fingerprint;
  if (o.resume && existsSync(fpPath)) fp = JSON.parse(readFileSync(fpPath, 'utf8'));
  else {
    fp = await computeFingerprint(ds);
    writeJson(fpPath, fp);
  }
  const planPath = join(o.out, 'plan.json');
  let plan: Plan;
  if (typeof o.plan === 'string') plan = loadPlan(o.plan);
  else if (o.plan) plan = o.plan;
  else if (o.resume && existsSync(planPath)) plan = loadPlan(planPath);
  else plan = makePlan(ds, fp, o.planOptions);
  writeJson(planPath, plan);
  log(
    `plan: ${plan.dims}D ${plan.network.architecture}, patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}], ` +
      `${plan.training.epochs} epochs x ${plan.training.iterationsPerEpoch} iterations (budget ${plan.budget.minutes} min, ~${plan.budget.stepSeconds.toFixed(2)} s/step)`,
  );

  const ids = ds.cases.map((c) => c.id);
  const splits = o.split ? [o.split] : kFoldSplits(ids, o.nFolds ?? 5, 12345);
  writeJson(join(o.out, 'splits.json'), splits);
  const folds = o.folds === 'all' ? splits.map((_, i) => i) : (o.folds ?? [0]);
  const needed = new Set(folds.flatMap((f) => [...splits[f]!.train, ...splits[f]!.val]));
  const cases = await preprocessAll(ds, plan, needed, log);

  const results: TrainModelResult['folds'] = [];
  const ppStats = new Map<number, { without: number[]; with: number[] }>();
  const rows: MetricRow[] = [];
  const seed = o.seed ?? 12345;
  for (const fold of folds) {
    const split = splits[fold];
    if (!split) throw new Error(`fold ${fold} does not exist (${splits.length} folds)`);
    const foldDir = join(o.out, `fold_${fold}`);
    torch.manualSeed(seed + fold);
    const net = createNetwork(plan.network);
    const sampler = new PatchSampler(
      split.train.map((id) => cases.get(id)!),
      { patchSize: plan.patchSize, batchSize: plan.batchSize, foregroundOversampling: plan.foregroundOversampling, augmentation: plan.augmentation, seed: seed + fold },
    );
    const validation = split.val.map((id) => cases.get(id)!);
    log(`fold ${fold}: ${split.train.length} training, ${validation.length} validation cases; ${countParameters(net)} parameters`);
    const result = await train(
      net,
      { ...plan.training, patchSize: plan.patchSize, numClasses: plan.network.numClasses },
      { nextBatch: (e, i) => sampler.batch(e, i), validation },
      foldDir,
      { resume: o.resume, progress: o.progress ?? createProgress('auto') },
    );
    // Final validation with the best weights and mirroring TTA, with and without postprocessing.
    const { tensors } = torch.loadSafetensors(join(foldDir, 'model_best.safetensors'));
    net.loadStateDict(tensors);
    for (const t of tensors.values()) t.dispose();
    net.eval();
    const K = plan.network.numClasses;
    const foreground = Array.from({ length: K - 1 }, (_, i) => i + 1);
    for (const c of validation) {
      const pred = predictCaseLabels(net, c, plan.patchSize, plan.inference.mirror);
      const size: [number, number, number] = [c.shape[2], c.shape[1], c.shape[0]];
      const spacing: [number, number, number] = [c.spacing[2], c.spacing[1], c.spacing[0]];
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
  const probe = createNetwork(plan.network);
  writeModelCard(o.out, {
    modelName: `${ds.name} ${info.name}`,
    architecture: `${plan.dims}D ${info.name}`,
    architectureType: info.type,
    parameters: countParameters(probe),
    data: { dataset: ds.name, cases: ds.cases.length, modality: ds.channels.join(', '), labels: Object.fromEntries(Object.entries(plan.labels).map(([k, v]) => [k, v])) },
    plan: {
      patchSize: plan.patchSize,
      targetSpacing: plan.targetSpacing,
      batchSize: plan.batchSize,
      features: plan.network.features,
      normalization: plan.normalization.map((n) => n.scheme),
    },
    training: {
      epochs: plan.training.epochs,
      iterations: plan.training.epochs * plan.training.iterationsPerEpoch,
      wallTimeHours: results.reduce((a, r) => a + r.result.minutes, 0) / 60,
      budget: `${plan.budget.minutes} min per fold on ${plan.budget.cores} CPU threads`,
      seed,
    },
    validation: rows.map((r) => ({ ...r, model: `${ds.name} ${info.name}` })) as never,
  });
  probe.dispose();
  return { modelDir: o.out, plan, folds: results, postprocessing, validationRows: rows };
}
