/**
 * Exports a trained model folder to ONNX, self-describing: each model's
 * metadata_props carry the plan's preprocessing (target spacing,
 * normalisation and its statistics, patch size, labels, TTA axes), the
 * network config and the medseg version as JSON under the key 'medseg'. One
 * fold gives one .onnx file; several folds give a folder with one
 * fold_<k>/model.onnx per fold and a manifest.json that lists them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { disposeModel, loadModel, type LoadedModel } from '../infer/predict.ts';
import { ttaOptions } from '../infer/sliding-window.ts';
import type { CheckpointChoice, ModelCalibration } from '../plan/model-folder.ts';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic-write.ts';
import { exportOnnx, type OnnxExport } from './export-onnx.ts';
import { ONNX_MANIFEST_FORMAT, ONNX_METADATA_FORMAT, type OnnxCalibration, type OnnxModelInfo } from './model-info.ts';

export { ONNX_MANIFEST_FORMAT, ONNX_METADATA_FORMAT, type OnnxModelInfo } from './model-info.ts';

export const MANIFEST_FILE = 'manifest.json';

/** Bad export arguments (exit code 2 at the CLI). */
export class ExportOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportOptionError';
  }
}

export function medsegVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

function onnxCalibration(c: ModelCalibration): OnnxCalibration {
  const t = c.triage;
  return {
    temperature: c.temperature,
    score: c.score,
    members: c.members,
    ...(c.sources ? { sources: c.sources } : {}),
    triage: t ? { threshold: t.threshold, failureDice: t.failureDice, auroc: t.auroc } : null,
  };
}

function info(model: LoadedModel, k: number, e: Omit<OnnxExport, 'bytes'>): OnnxModelInfo {
  const plan = model.plan;
  const spatial = plan.patchSize.length;
  const tta = ttaOptions(plan.inference, spatial);
  return {
    format: ONNX_METADATA_FORMAT,
    medsegVersion: medsegVersion(),
    dataset: plan.dataset,
    architecture: plan.network.architecture,
    network: plan.network,
    dims: plan.dims,
    channels: plan.channels,
    labels: plan.labels,
    targetSpacing: plan.targetSpacing,
    normalization: plan.normalization,
    patchSize: plan.patchSize,
    inference: { ...plan.inference, mirrorAxes: tta.mirrorAxes ?? [], transposeAxes: tta.transposeAxes ?? [] },
    postprocessing: { keepLargestComponent: model.postprocessing },
    input: { name: 'image', layout: spatial === 3 ? 'N,C,D,H,W' : 'N,C,H,W', shape: e.inputShape },
    output: { name: 'logits', shape: e.outputShape },
    dynamicAxes: e.dynamicAxes.map((a) => a.name),
    fixedAxes: e.fixedAxes,
    fold: model.folds[k]!,
    weights: model.weights[k]!.split(/[\\/]/).slice(-2).join('/'),
    ...(model.calibration ? { calibration: onnxCalibration(model.calibration) } : {}),
  };
}

/**
 * Exports fold k of a loaded model; the sample input is zeros of the plan's
 * patch size (the trace records ops, not values). `extra` metadata entries
 * (a pruning record) go beside the 'medseg' one.
 */
export function exportLoadedFold(model: LoadedModel, k: number, extra: Record<string, string> = {}): { bytes: Uint8Array; info: OnnxModelInfo } {
  const net = model.nets[k]!;
  const plan = model.plan;
  return torch.tidy(() => {
    const input = torch.zeros([1, plan.network.inChannels, ...plan.patchSize]);
    let meta: OnnxModelInfo | undefined;
    const e = exportOnnx(net, {
      input,
      producerVersion: medsegVersion(),
      docString: `medseg ${plan.network.architecture} for ${plan.dataset}, fold ${model.folds[k]}`,
      metadata: (found) => {
        meta = info(model, k, found);
        return { ...extra, medseg: JSON.stringify(meta), 'medseg.version': meta.medsegVersion, 'medseg.architecture': meta.architecture };
      },
    });
    return { bytes: e.bytes, info: meta! };
  });
}

export interface ExportModelOptions {
  /** A fold number, or 'all' (default: all trained folds). */
  fold?: number | 'all';
  checkpoint?: CheckpointChoice;
}

export interface ExportModelResult {
  /** The .onnx file (one fold) or the folder with manifest.json (several). */
  path: string;
  files: { fold: number; path: string; bytes: number; sha256: string }[];
  info: OnnxModelInfo[];
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Exports a model folder. One fold: `out` is the .onnx file. Several: `out`
 * is a folder that receives fold_<k>/model.onnx and manifest.json.
 */
export function exportModelFolder(modelDir: string, out: string, o: ExportModelOptions = {}): ExportModelResult {
  const folds = o.fold === undefined || o.fold === 'all' ? undefined : [o.fold];
  const model = loadModel(modelDir, { folds, checkpoint: o.checkpoint });
  try {
    const single = model.nets.length === 1;
    if (!single && out.toLowerCase().endsWith('.onnx')) {
      throw new ExportOptionError(`${model.nets.length} folds export to a folder with a manifest; give --out a folder name (not ${out}) or choose one --fold`);
    }
    const files: ExportModelResult['files'] = [];
    const infos: OnnxModelInfo[] = [];
    for (let k = 0; k < model.nets.length; k++) {
      const { bytes, info: meta } = exportLoadedFold(model, k);
      const path = single ? out : join(out, `fold_${meta.fold}`, 'model.onnx');
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileAtomicSync(path, bytes);
      files.push({ fold: meta.fold, path, bytes: bytes.length, sha256: sha256(bytes) });
      infos.push(meta);
    }
    if (!single) {
      // What every fold shares (the plan's preprocessing, shapes) once, then one entry per fold.
      const { fold: _fold, weights: _weights, format: _format, ...shared } = infos[0]!;
      writeJsonAtomicSync(join(out, MANIFEST_FILE), {
        format: ONNX_MANIFEST_FORMAT,
        ensemble: 'mean of the softmax probabilities of the folds',
        models: files.map((f, i) => ({ fold: f.fold, file: `fold_${f.fold}/model.onnx`, sha256: f.sha256, bytes: f.bytes, weights: infos[i]!.weights })),
        ...shared,
      });
    }
    return { path: out, files, info: infos };
  } finally {
    disposeModel(model);
  }
}
