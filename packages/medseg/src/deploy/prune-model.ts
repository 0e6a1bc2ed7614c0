/**
 * Pruning a trained model folder into a new model folder that predict,
 * export and compress read like any other: the plan, splits, fingerprint,
 * postprocessing and calibration are copied, each fold's weights are pruned
 * (prune.ts) and written under the same file name with their pruned shapes
 * and the pruning summary in the safetensors metadata (PRUNING_METADATA_KEY),
 * and pruning.json lists every fold's summary with the parameters and the
 * multiply-accumulates of one patch before and after. The model card is not
 * copied: it describes the unpruned model.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { countMACs } from '../models/registry.ts';
import { disposeModel, loadModel } from '../infer/predict.ts';
import { foldDir, modelFile, type CheckpointChoice, type ModelFile } from '../plan/model-folder.ts';
import { PRUNING_METADATA_KEY, saveWeights } from '../plan/model-weights.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';
import { pruneNetwork, PruneError, type PruneSettings, type PruneSummary } from './prune.ts';

/** The file beside plan.json that records the pruning. */
export const PRUNING_FILE = 'pruning.json';

const COPIED: ModelFile[] = ['plan', 'fingerprint', 'splits', 'postprocessing', 'calibration'];

export interface PrunedFold {
  fold: number;
  weights: string;
  summary: PruneSummary;
  /** Multiply-accumulates of one forward pass on a patch of the plan's size. */
  macs: { before: number; after: number };
}

export interface PruneModelOptions extends PruneSettings {
  /** Folds to prune (default: every trained fold). */
  folds?: number[];
  checkpoint?: CheckpointChoice;
}

export function pruneModelFolder(modelDir: string, out: string, o: PruneModelOptions): { path: string; folds: PrunedFold[] } {
  if (resolve(out) === resolve(modelDir)) throw new PruneError('the pruned model folder must be a new folder, not the model folder itself');
  if (existsSync(modelFile(out, 'plan'))) throw new PruneError(`${out} is already a model folder; give --out a new folder`);
  const model = loadModel(modelDir, { folds: o.folds, checkpoint: o.checkpoint });
  try {
    const plan = model.plan;
    const input = [1, plan.network.inChannels, ...plan.patchSize];
    const folds: PrunedFold[] = [];
    const pruned: { fold: number; file: string; summary: PruneSummary }[] = [];
    model.nets.forEach((net, k) => {
      const before = countMACs(net, plan.patchSize);
      const { summary } = pruneNetwork(net, input, o);
      const fold = model.folds[k]!;
      const file = join(foldDir(out, fold), basename(model.weights[k]!));
      folds.push({ fold, weights: file, summary, macs: { before, after: countMACs(net, plan.patchSize) } });
      pruned.push({ fold, file, summary });
    });
    mkdirSync(out, { recursive: true });
    for (const f of COPIED) if (existsSync(modelFile(modelDir, f))) copyFileSync(modelFile(modelDir, f), modelFile(out, f));
    model.nets.forEach((net, k) => {
      const p = pruned[k]!;
      mkdirSync(foldDir(out, p.fold), { recursive: true });
      saveWeights(p.file, net.stateDict(), { [PRUNING_METADATA_KEY]: JSON.stringify(p.summary) });
    });
    writeJsonAtomicSync(join(out, PRUNING_FILE), {
      source: resolve(modelDir),
      settings: { sparsity: o.sparsity, structured: o.structured ?? false, scope: o.structured ? undefined : (o.scope ?? 'global') },
      fineTuned: false,
      folds: folds.map((f) => ({ ...f, weights: relative(out, f.weights) })),
    });
    return { path: out, folds };
  } finally {
    disposeModel(model);
  }
}
