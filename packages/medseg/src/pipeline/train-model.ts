/**
 * The whole training job for one dataset: fingerprint, plan (resolveTrainingPlan), preprocess, and
 * for every requested fold train (trainer.ts), then decide postprocessing on
 * the folds' validation cases and write the model card, into a model folder
 * laid out as plan/model-folder.ts describes.
 *
 * Data-parallel (o.distributed): rank 0 runs the whole job and sends its plan
 * to the other ranks, which preprocess (on one machine: find the cases
 * cached), train each fold with it on batches of their own and write nothing.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { xyzFromZyx } from '../data/axes.ts';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { computeFingerprint, loadFingerprint, saveFingerprint, type Fingerprint } from '../data/fingerprint.ts';
import { BatchLoader } from '../data/loader.ts';
import { loadPlan, savePlan } from '../plan/store.ts';
import { validatePlan } from '../plan/validate.ts';
import type { Plan } from '../plan/types.ts';
import { loadPreprocessed, preprocessDataset } from '../data/preprocess.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { evaluateCase } from '../eval/metrics.ts';
import { toRows, type MetricRow } from '../eval/metrics_rows.ts';
import { recordsToCsv } from '../util/csv.ts';
import type { MetricRow as StatRow } from '../eval/statistics/rows.ts';
import { writeModelCard } from '../eval/report/modelcard.ts';
import type { TtaLevelRow } from '../eval/report/tta-levels-card.ts';
import { measureTtaLevels } from './tta-levels.ts';
import { decidePostprocessing, applyPostprocessing } from '../infer/postprocess.ts';
import { architectureInfo, countParameters, createNetwork } from '../models/registry.ts';
import { argmaxLabels, predictCaseMembers, validationSources } from '../infer/predict-case.ts';
import { disposeUncertaintyMaps } from '../infer/uncertainty.ts';
import { ValidationConfidence } from '../infer/validation-confidence.ts';
import { medianDiceCase, validationFaithfulness, type FaithfulnessCandidate } from '../explain/model-faithfulness.ts';
import type { ModelCardFaithfulness } from '../eval/report/modelcard.ts';
import { foldDir, foldFile, modelCardPaths, modelFile, writeCalibration, writePostprocessing } from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { train, type TrainResult, type TrainingData } from '../train/trainer.ts';
import { broadcastJson, rankBatchSize, rankSeed, type DataParallelOptions } from '../train/data-parallel.ts';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic-write.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { kFoldSplits, type Split } from './splits.ts';
import { trainerConfig } from '../train/trainer-config.ts';
import { initializeWeights, type InitOptions, type InitReport } from '../train/transfer.ts';
import { encoderStateNames } from '../models/encoder-parts.ts';
import type { SemiSupervisedSettings } from '../plan/types.ts';
import { SEMI_DEFAULTS, semiSupervisedStep } from '../train/semi-step.ts';
import { EmaTeacher } from '../train/semi-teacher.ts';
import { prepareUnlabelled, withUnlabelled, type UnlabelledSet, type UnlabelledSource } from './semi-data.ts';
import { ensureWritableFolder, hasPlanningChoices, planDataset, storedPlanExists, storedPlanPath, type PlanningChoices } from './plan-dataset.ts';
import { planningChoicesOf } from './planning-choices.ts';
import { preprocessedDir } from './preprocess-dataset.ts';
import { mixTrainingIds, readSyntheticDataset } from './synthesize-mix.ts';

/**
 * The planning choices (minutes, architecture, optimizer, loss, dims) are
 * those of pipeline/plan-dataset.ts; see resolveTrainingPlan for when they
 * apply.
 */
export interface TrainModelOptions extends PlanningChoices {
  /** An nnU-Net / MSD raw dataset folder (see data/dataset.ts; `medseg import` makes one). */
  dataset: string;
  out: string;
  /** A plan file or a plan, used as it is (planning choices are then ignored). */
  plan?: string | Plan;
  /** Folds to train (default [0]); 'all' = every fold. */
  folds?: number[] | 'all';
  nFolds?: number;
  /** An explicit split instead of k-fold (one "fold 0"). */
  split?: Split;
  resume?: boolean;
  seed?: number;
  /** Loader worker threads (default 1: the trainer's libtorch threads want the cores). */
  workers?: number;
  /**
   * Transfer learning: start every fold from these weights (train/transfer.ts),
   * the encoder at `encoderLrScale` times the learning rate (default 1; 0 freezes it).
   */
  init?: InitOptions & { encoderLrScale?: number };
  /**
   * Synthetic pairs (a `medseg synthesize` folder) mixed into every fold's
   * training cases so that a batch draws a synthetic case with probability
   * `ratio` (pipeline/synthesize-mix.ts); validation stays real.
   */
  synthetic?: { dir: string; ratio: number };
  /**
   * Semi-supervised training (train/semi-step.ts): unlabelled patches in
   * every step against an EMA teacher. Unlabelled cases: the dataset's
   * imagesTr images without a label (default), a folder, or training cases
   * whose labels are set aside (pipeline/semi-data.ts). `settings` override
   * the method's defaults (SEMI_DEFAULTS).
   */
  semi?: { method: SemiSupervisedSettings['method']; unlabelled?: UnlabelledSource; settings?: Partial<SemiSupervisedSettings> };
  /**
   * Check Grad-CAM's faithfulness (randomisation test, deletion curve) on one
   * validation case of the first fold for the model card (default true; a few
   * dozen predictions of one case).
   */
  faithfulness?: boolean;
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Data-parallel training: this process is one rank of the group (every rank gets the same options). */
  distributed?: { group: torch.ProcessGroup } & DataParallelOptions;
}

export interface TrainModelResult {
  modelDir: string;
  plan: Plan;
  folds: { fold: number; result: TrainResult; valDice: number[] }[];
  postprocessing: number[];
  validationRows: MetricRow[];
}

/** Where a training run's plan came from. */
export type PlanSource = 'given' | 'resumed' | 'stored' | 'planned';

/**
 * The plan a training run uses: the one given (--plan); on resume the model
 * folder's; else the dataset's stored plan (`medseg plan`) unless a planning
 * choice is made; else a new plan (planDataset, the same function as
 * `medseg plan`), not written to the dataset folder.
 */
export async function resolveTrainingPlan(
  o: TrainModelOptions,
  ds: Dataset,
  fp: Fingerprint,
): Promise<{ plan: Plan; source: PlanSource; from: string | null }> {
  const choices = planningChoicesOf(o);
  if (typeof o.plan === 'string') return { plan: loadPlan(o.plan), source: 'given', from: o.plan };
  if (o.plan) return { plan: validatePlan(o.plan), source: 'given', from: null };
  const modelPlan = modelFile(o.out, 'plan');
  if (o.resume && existsSync(modelPlan)) return { plan: loadPlan(modelPlan), source: 'resumed', from: modelPlan };
  if (!hasPlanningChoices(choices) && storedPlanExists(ds.dir))
    return { plan: loadPlan(storedPlanPath(ds.dir)), source: 'stored', from: storedPlanPath(ds.dir) };
  const { plan } = await planDataset({ dataset: ds, choices, fingerprint: fp, out: null });
  return { plan, source: 'planned', from: null };
}

/** The dataset's preprocessed-case cache for the plan when its folder is writable (shared with `medseg preprocess`), else one inside the model folder. */
export function cacheDirFor(ds: Dataset, plan: Plan, modelDir: string): string {
  const shared = preprocessedDir(ds.dir, plan);
  try {
    ensureWritableFolder(join(shared, 'plan-hash.txt'), '--out');
    return shared;
  } catch {
    return modelFile(modelDir, 'preprocessed');
  }
}

/** Training batches from the worker loader; batch k of the run is epoch * I + iteration, so a resumed run continues the same sequence. */
export function loaderData(dir: string, ids: string[], plan: Plan, seed: number, workers: number, validation: PreprocessedCase[]): TrainingData {
  let loader: BatchLoader | null = null;
  let expected = -1;
  // The skeleton-recall targets are made with each batch in the loader's workers, off the step's critical path.
  const skeletonClasses = plan.training.loss.skeletonRecall ? plan.network.numClasses : undefined;
  return {
    validation,
    async nextBatch(epoch, it) {
      const k = epoch * plan.iterationsPerEpoch + it;
      if (!loader || k !== expected) {
        await loader?.close();
        loader = new BatchLoader({ dir, ids, plan, seed, workers, start: k, batch: { skeletonClasses } });
      }
      expected = k + 1;
      const b = await loader.next();
      return torch.tidy(() => ({
        image: torch.tensor(b.image, b.shape),
        label: torch.tensor(b.label, [b.shape[0]!, ...b.shape.slice(2)]).long(),
        ...(b.skeleton ? { skeletons: torch.tensor(b.skeleton, [b.shape[0]!, skeletonClasses!, ...b.shape.slice(2)]).float() } : {}),
      }));
    },
    async close() {
      await loader?.close();
    },
  };
}

/**
 * The second pass over the validation cases (infer/validation-confidence.ts):
 * each fold's best weights predict its validation cases again, now at the
 * temperature fitted on all of them, and the triage scores come from these
 * members, as prediction computes them for the calibrated model.
 */
async function scoreValidationCases(
  modelDir: string,
  plan: Plan,
  cacheDir: string,
  splits: Split[],
  folds: number[],
  confidence: ValidationConfidence,
): Promise<void> {
  if (confidence.caseCount === 0) return;
  const { temperature } = confidence.fitTemperature();
  for (const fold of folds) {
    const net = createNetwork(plan.network);
    try {
      loadWeightsInto(net, foldFile(foldDir(modelDir, fold), 'best'));
      net.eval();
      for (const id of splits[fold]!.val) {
        const maps = predictCaseMembers(net, await loadPreprocessed(cacheDir, id), plan.patchSize, plan.inference, temperature);
        try {
          confidence.scoreCase(id, maps);
        } finally {
          disposeUncertaintyMaps(maps);
        }
      }
    } finally {
      net.dispose();
    }
  }
}

/** The plan each rank trains with: the plan's batch split over the ranks. */
function rankPlan(plan: Plan, o: TrainModelOptions): Plan {
  return o.distributed ? { ...plan, batchSize: rankBatchSize(plan.batchSize, o.distributed.group.worldSize) } : plan;
}

/** The folds to train and their splits, the same on every rank. */
function foldsAndSplits(o: TrainModelOptions, ids: string[]): { splits: Split[]; folds: number[] } {
  const splits = o.split ? [o.split] : kFoldSplits(ids, o.nFolds ?? 5, 12345);
  const folds = o.folds === 'all' ? splits.map((_, i) => i) : (o.folds ?? [0]);
  for (const fold of folds) {
    const split = splits[fold];
    if (!split) throw new Error(`fold ${fold} does not exist (${splits.length} folds)`);
    for (const id of [...split.train, ...split.val]) if (!ids.includes(id)) throw new Error(`split names case ${id}, which the dataset does not have`);
  }
  return { splits, folds };
}

/** A rank other than 0 of a data-parallel job: rank 0's plan, this rank's batches, nothing written. */
async function trainOtherRank(o: TrainModelOptions, distributed: NonNullable<TrainModelOptions['distributed']>): Promise<TrainModelResult> {
  const ds: Dataset = readDataset(o.dataset);
  const plan = validatePlan(await broadcastJson<Plan>(distributed.group, null));
  const { splits, folds } = foldsAndSplits(
    o,
    ds.training.map((c) => c.id),
  );
  const cacheDir = cacheDirFor(ds, plan, o.out);
  await preprocessDataset(ds, plan, cacheDir);
  const cfg = trainerConfig(plan);
  const seed = o.seed ?? 12345;
  const results: TrainModelResult['folds'] = [];
  for (const fold of folds) {
    torch.manualSeed(seed + fold);
    const net = createNetwork(plan.network);
    try {
      if (o.init) {
        initializeWeights(net, o.init);
        const scale = o.init.encoderLrScale ?? 1;
        cfg.lrScales = scale === 1 ? undefined : new Map([...encoderStateNames(net)].map((n) => [n, scale]));
      }
      const data = loaderData(cacheDir, splits[fold]!.train, rankPlan(plan, o), rankSeed(seed + fold, distributed.group.rank), o.workers ?? 1, []);
      const result = await train(net, cfg, data, foldDir(o.out, fold), {
        resume: o.resume,
        progress: { start() {}, update() {}, stop() {} },
        distributed,
      });
      results.push({ fold, result, valDice: [] });
    } finally {
      net.dispose();
    }
  }
  return { modelDir: o.out, plan, folds: results, postprocessing: [], validationRows: [] };
}

export async function trainModel(o: TrainModelOptions): Promise<TrainModelResult> {
  if (o.distributed && o.distributed.group.rank !== 0) return trainOtherRank(o, o.distributed);
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  mkdirSync(o.out, { recursive: true });
  const ds: Dataset = readDataset(o.dataset, { unlabelled: !!o.semi });
  log(
    `dataset ${ds.name}: ${ds.training.length} labelled cases${ds.unlabelled?.length ? ` and ${ds.unlabelled.length} without labels` : ''}, channels ${ds.channels.join(', ')}`,
  );

  const fpPath = modelFile(o.out, 'fingerprint');
  let fp: Fingerprint;
  if (o.resume && existsSync(fpPath)) fp = loadFingerprint(fpPath);
  else {
    fp = await computeFingerprint(ds);
    await saveFingerprint(fpPath, fp);
  }
  const planPath = modelFile(o.out, 'plan');
  const resolved = await resolveTrainingPlan(o, ds, fp);
  const plan: Plan = { ...resolved.plan };
  const said: Record<PlanSource, string> = {
    given: `the given plan${resolved.from ? ` ${resolved.from}` : ''}`,
    resumed: `the interrupted run's plan ${resolved.from}`,
    stored: `the dataset's stored plan ${resolved.from}`,
    planned: storedPlanExists(ds.dir)
      ? 'planned anew (planning options given; the stored plan is left as it is)'
      : 'planned anew (the dataset has no stored plan: `medseg plan` makes one)',
  };
  log(`plan: ${said[resolved.source]}`);
  if (resolved.source === 'given' && hasPlanningChoices(planningChoicesOf(o))) {
    log('note: the given plan is used as it is; the planning options are ignored');
  }
  await savePlan(planPath, plan);
  log(
    `plan: ${plan.dims} ${plan.network.architecture}, patch [${plan.patchSize}], batch ${plan.batchSize}, features [${plan.network.features}], ` +
      `${plan.epochs} epochs x ${plan.iterationsPerEpoch} iterations${plan.budget ? ` (budget ${plan.budget.minutes} min, ~${plan.budget.stepSeconds.toFixed(2)} s/step ${plan.budget.calibration ? 'measured' : 'predicted'})` : ''}`,
  );

  const ids = ds.training.map((c) => c.id);
  const { splits, folds } = foldsAndSplits(o, ids);
  writeJsonAtomicSync(modelFile(o.out, 'splits'), splits);
  const cacheDir = cacheDirFor(ds, plan, o.out);
  const t0 = Date.now();
  const pre = await preprocessDataset(ds, plan, cacheDir);
  log(`preprocessed ${pre.computed} of ${pre.ids.length} cases into ${cacheDir} (the rest cached) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (o.distributed) {
    const { worldSize } = o.distributed.group;
    await broadcastJson(o.distributed.group, plan);
    const b = rankBatchSize(plan.batchSize, worldSize);
    log(`data-parallel: ${worldSize} ranks x batch ${b} (global batch ${b * worldSize}; the plan's is ${plan.batchSize}); rank 0 validates and writes`);
  }
  let syntheticIds: string[] = [];
  let syntheticNote: string | null = null;
  if (o.synthetic) {
    // Synthetic cases share the plan's cache; their ids (synthetic_*) are checked not to clash with real ones.
    const sds = readSyntheticDataset(o.synthetic.dir, ds);
    syntheticIds = (await preprocessDataset(sds, plan, cacheDir)).ids;
    log(`synthetic: ${syntheticIds.length} SYNTHETIC pairs from ${sds.dir}, drawn at ratio ${o.synthetic.ratio}`);
    writeJsonAtomicSync(join(o.out, 'synthetic.json'), { dir: sds.dir, cases: syntheticIds.length, ratio: o.synthetic.ratio });
  }
  let unlabelled: UnlabelledSet | null = null;
  if (o.semi) {
    unlabelled = await prepareUnlabelled(ds, plan, cacheDir, o.semi.unlabelled ?? 'dataset');
    plan.semiSupervised = {
      ...SEMI_DEFAULTS[o.semi.method],
      ...o.semi.settings,
      method: o.semi.method,
      unlabelledCases: unlabelled.ids.length,
      unlabelledSource: unlabelled.source,
    };
    log(`semi-supervised (${o.semi.method}): ${unlabelled.ids.length} unlabelled cases (${unlabelled.source})`);
  } else delete plan.semiSupervised;
  await savePlan(planPath, plan);

  const results: TrainModelResult['folds'] = [];
  const ppStats = new Map<number, { without: number[]; with: number[] }>();
  const rows: MetricRow[] = [];
  const seed = o.seed ?? 12345;
  const cfg = trainerConfig(plan);
  const confidence = new ValidationConfidence(plan.network.numClasses, validationSources(plan.inference, plan.patchSize.length));
  let faithfulness: ModelCardFaithfulness | null = null;
  let init: InitReport | null = null;
  let parameters = 0;
  let ttaLevels: TtaLevelRow[] = [];
  for (const fold of folds) {
    const split = splits[fold]!;
    const foldPath = foldDir(o.out, fold);
    torch.manualSeed(seed + fold);
    const net = createNetwork(plan.network);
    if (o.init) {
      init = initializeWeights(net, o.init);
      log(
        `fold ${fold}: initialised ${init.loaded.length} of ${init.loaded.length + init.untouched.length} tensors (${init.part}) from ${init.file}` +
          (init.skipped.length ? `; ${init.skipped.length} source tensors left out (e.g. ${init.skipped[0]!.name}: ${init.skipped[0]!.reason})` : ''),
      );
      const scale = o.init.encoderLrScale ?? 1;
      cfg.lrScales = scale === 1 ? undefined : new Map([...encoderStateNames(net)].map((n) => [n, scale]));
    }
    const validation = await Promise.all(split.val.map((id) => loadPreprocessed(cacheDir, id)));
    parameters = countParameters(net);
    log(`fold ${fold}: ${split.train.length} training, ${validation.length} validation cases; ${parameters} parameters`);
    let trainIds = split.train;
    if (o.synthetic) {
      const mix = mixTrainingIds(split.train, syntheticIds, o.synthetic.ratio);
      trainIds = mix.ids;
      syntheticNote = `${syntheticIds.length} SYNTHETIC pairs from ${resolve(o.synthetic.dir)}, drawn at ratio ${o.synthetic.ratio} (realised ${mix.realisedRatio.toFixed(3)})`;
      log(`fold ${fold}: ${syntheticNote}`);
    }
    let data = loaderData(cacheDir, trainIds, rankPlan(plan, o), seed + fold, o.workers ?? 1, validation);
    const semi = plan.semiSupervised;
    const teacher = unlabelled && semi ? new EmaTeacher(createNetwork(plan.network), net) : null;
    if (unlabelled) data = withUnlabelled(data, unlabelled, plan, seed + fold, o.workers ?? 1);
    const semiOptions =
      teacher && semi
        ? {
            step: (
              opt: torch.optim.Optimizer,
              b: { image: torch.Tensor; label: torch.Tensor; unlabelled?: torch.Tensor; skeletons?: torch.Tensor },
              at: { step: number; progress: number },
            ) =>
              semiSupervisedStep(net, opt, teacher, { image: b.image, label: b.label, unlabelled: b.unlabelled!, skeletons: b.skeletons }, at, semi, {
                ...cfg,
                numClasses: plan.network.numClasses,
              }).loss,
            extraState: { tensors: () => teacher.tensors('teacher.'), restore: (m: Map<string, torch.Tensor>) => teacher.restore(m, 'teacher.') },
          }
        : {};
    let result: TrainResult;
    try {
      result = await train(net, cfg, data, foldPath, {
        resume: o.resume,
        progress: o.progress ?? createProgress('auto'),
        ...(o.distributed ? { distributed: o.distributed } : {}),
        ...semiOptions,
      });
    } finally {
      teacher?.dispose();
    }

    // Final validation with the best weights and the plan's TTA, with and without postprocessing.
    loadWeightsInto(net, foldFile(foldPath, 'best'));
    net.eval();
    const K = plan.network.numClasses;
    const foreground = Array.from({ length: K - 1 }, (_, i) => i + 1);
    const candidates: FaithfulnessCandidate[] = [];
    for (const c of validation) {
      // The TTA passes as members: the same labels as a plain TTA prediction, plus the case's uncertainty and logits for calibration.
      const maps = predictCaseMembers(net, c, plan.patchSize, plan.inference);
      const pred = argmaxLabels(maps.meanLogits!);
      const size = xyzFromZyx(c.shape);
      const spacing = xyzFromZyx(c.spacing);
      const ev = evaluateCase(pred, c.label!, { size, spacing, labels: foreground, case: c.id });
      const caseDice = ev.classes.map((m) => m.dice as number).filter(Number.isFinite);
      const meanDice = caseDice.length ? caseDice.reduce((a, b) => a + b, 0) / caseDice.length : NaN;
      confidence.addCase(c.id, fold, maps, c.label!, meanDice);
      disposeUncertaintyMaps(maps);
      candidates.push({ id: c.id, dice: meanDice, predicted: pred.includes(1) });
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
      const d = rows
        .filter((r) => r.fold === fold && r.label === k)
        .map((r) => Number(r.dice))
        .filter(Number.isFinite);
      return d.reduce((a, b) => a + b, 0) / Math.max(1, d.length);
    });
    log(`fold ${fold}: validation Dice (best weights, TTA) ${valDice.map((d) => d.toFixed(4)).join(' / ')}`);
    if (results.length === 0) {
      ttaLevels = measureTtaLevels(net, validation, plan);
      if (ttaLevels.length) log(`TTA levels: ${ttaLevels.map((r) => `${r.level} ${r.secondsPerCase.toFixed(2)} s Dice ${r.meanDice.toFixed(4)}`).join(', ')}`);
    }
    const explained = o.faithfulness !== false && faithfulness === null && K > 1 ? medianDiceCase(candidates) : null;
    if (explained !== null) {
      faithfulness = validationFaithfulness(
        net,
        plan,
        validation.find((c) => c.id === explained)!,
        fold,
        { seed },
      );
      const f = faithfulness;
      log(
        `fold ${fold}: Grad-CAM on ${f.case} (${f.caseChoice}): randomisation rho ${f.randomisation.spearman.toFixed(3)} / |map| ${f.randomisation.spearmanAbs.toFixed(3)} (${f.randomisation.passes ? 'passes' : 'fails'}), ` +
          `deletion AUC ${f.deletion.auc.toFixed(3)} vs random ${f.deletion.randomAuc.toFixed(3)} (${f.seconds.toFixed(1)} s)`,
      );
    }
    results.push({ fold, result, valDice });
    net.dispose();
  }
  const postprocessing = decidePostprocessing(ppStats);
  writePostprocessing(o.out, { keepLargestComponent: postprocessing, evidence: Object.fromEntries(ppStats) });
  writeFileAtomicSync(modelFile(o.out, 'validation'), recordsToCsv(rows));
  await scoreValidationCases(o.out, plan, cacheDir, splits, folds, confidence);
  const calibration = confidence.finish();
  if (calibration) {
    writeCalibration(o.out, calibration);
    log(
      `calibration: temperature ${calibration.temperature.toFixed(3)}, ECE ${calibration.ece.before.toFixed(4)} -> ${calibration.ece.after.toFixed(4)}` +
        (calibration.triage ? `; review flag at uncertainty >= ${calibration.triage.threshold.toFixed(4)}` : ''),
    );
  }
  const info = architectureInfo(plan.network.architecture);
  const modelName = `${ds.name} ${info.name}`;
  writeModelCard(modelCardPaths(o.out), {
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
      ...(init
        ? {
            initialisation:
              `${init.part === 'encoder' ? 'encoder' : 'weights'} from ${init.file} (${init.from} names; ${init.loaded.length} tensors copied, ${init.untouched.length} as initialised)` +
              (o.init?.encoderLrScale !== undefined && o.init.encoderLrScale !== 1 ? `, encoder learning rate x${o.init.encoderLrScale}` : ''),
          }
        : {}),
      ...(syntheticNote ? { syntheticData: syntheticNote } : {}),
      ...(plan.semiSupervised
        ? {
            semiSupervised:
              `${plan.semiSupervised.method} with ${plan.semiSupervised.unlabelledCases} unlabelled cases (${plan.semiSupervised.unlabelledSource}); ` +
              `unlabelled-loss weight ${plan.semiSupervised.weight} ramped up over ${Math.round(plan.semiSupervised.rampUp * 100)} % of the run, EMA teacher decay ${plan.semiSupervised.emaDecay}` +
              (plan.semiSupervised.method === 'pseudo-label'
                ? `, confidence > ${plan.semiSupervised.confidence}`
                : `, ${plan.semiSupervised.noisePasses} noisy teacher passes for the uncertainty mask`) +
              '; the student network is validated and saved',
          }
        : {}),
    },
    // Scored on the preprocessed grid of each fold's validation cases.
    validation: rows.map((r): StatRow => ({ ...r, model: modelName })),
    ...(calibration ? { calibration } : {}),
    ...(ttaLevels.length ? { ttaLevels } : {}),
    ...(faithfulness ? { faithfulness } : {}),
  });
  return { modelDir: o.out, plan, folds: results, postprocessing, validationRows: rows };
}
