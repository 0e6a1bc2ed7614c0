/**
 * The compressed variants `npm run bench -- deploy` measures, made in this one
 * place so that another pruning (with fine-tuning) or another calibrator is
 * one edit here:
 * - int8: static QDQ int8 of the fold's ONNX export, activation ranges from
 *   the centre patch of each calibration case (deploy/compress-model.ts, as
 *   `medseg compress --int8` does, min-max calibrator by default);
 * - pruned: the fold's network pruned in place (deploy/prune.ts), structured
 *   (channels removed) at sparsity 0.3 by default, then fine-tuned on its
 *   training cases for `fineTuneMinutes` (pipeline/finetune-pruned.ts, as
 *   `medseg compress --finetune-minutes`; 0: not fine-tuned).
 */
import { calibrationPatches, quantizeLoadedFold } from '../../packages/medseg/src/deploy/compress-model.ts';
import { exportLoadedFold } from '../../packages/medseg/src/deploy/export-model.ts';
import { pruneNetwork, type PruneSettings, type PruneSummary } from '../../packages/medseg/src/deploy/prune.ts';
import type { Calibrator } from '../../packages/medseg/src/deploy/quantize.ts';
import type { LoadedModel } from '../../packages/medseg/src/infer/predict.ts';
import { PRUNING_METADATA_KEY } from '../../packages/medseg/src/plan/model-weights.ts';
import { fineTunePruned } from '../../packages/medseg/src/pipeline/finetune-pruned.ts';

export type Calibration = Awaited<ReturnType<typeof calibrationPatches>>;

export interface VariantSettings {
  prune: PruneSettings;
  calibrator: Calibrator;
  /** Calibration cases (one centre patch each), the first ones of the calibration dataset. */
  calibrationCases: number;
  /** Fine-tuning budget of the pruned network, minutes (0: none). */
  fineTuneMinutes: number;
}

export const DEFAULT_VARIANTS: VariantSettings = {
  prune: { sparsity: 0.3, structured: true },
  calibrator: { kind: 'minmax' },
  calibrationCases: 8,
  fineTuneMinutes: 2,
};

/** Calibration patches from a dataset folder's first training cases, preprocessed with the model's plan. */
export function calibrate(model: LoadedModel, dataset: string, s: VariantSettings): Promise<Calibration> {
  return calibrationPatches(model, { dataset, cases: s.calibrationCases });
}

const pruningRecord = (pruning: PruneSummary | null): Record<string, string> => (pruning ? { [PRUNING_METADATA_KEY]: JSON.stringify(pruning) } : {});

/** fp32 ONNX of fold 0 as it is now (pruned or not), with the pruning record in its metadata when there is one. */
export function fp32Onnx(model: LoadedModel, pruning: PruneSummary | null): Uint8Array {
  return exportLoadedFold(model, 0, pruningRecord(pruning)).bytes;
}

/** Static int8 ONNX of fold 0 as it is now. */
export async function int8Onnx(model: LoadedModel, calibration: Calibration, s: VariantSettings, pruning: PruneSummary | null): Promise<Uint8Array> {
  return (await quantizeLoadedFold(model, 0, calibration, s.calibrator, pruningRecord(pruning))).bytes;
}

/**
 * Prunes fold 0 of a freshly loaded model in place. `context` is what a
 * pruning with fine-tuning needs (the training dataset and split); plain
 * pruning ignores it.
 */
export async function pruneModel(
  model: LoadedModel,
  s: VariantSettings,
  context: { dataset: string; train: string[]; val: string[] },
): Promise<{ summary: PruneSummary; fineTuned: boolean }> {
  const plan = model.plan;
  const net = model.nets[0]!;
  const { summary } = pruneNetwork(net, [1, plan.network.inChannels, ...plan.patchSize], s.prune);
  if (s.fineTuneMinutes <= 0) return { summary, fineTuned: false };
  const record = await fineTunePruned(net, plan, summary, {
    dataset: context.dataset,
    split: { train: context.train, val: context.val },
    minutes: s.fineTuneMinutes,
  });
  net.eval();
  return { summary: { ...summary, fineTuned: record }, fineTuned: true };
}
