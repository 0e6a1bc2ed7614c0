/**
 * `medseg compress` to an ONNX file, the whole job: prune, fine-tune the
 * pruned network within a time budget on the model's own training cases
 * (finetune-pruned.ts), export, quantize (deploy/compress-model.ts), then
 * score the written model against the original fp32 export on the fold's
 * validation cases (deploy/compression-eval.ts) and write the compressed
 * model's card beside the file: `<name>.model-card.md` and `.json`, the
 * model folder's card with a "Compressed model" section (size, latency per
 * network pass and per case, ΔDice, the quality gate).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readDataset } from '../data/dataset.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { compressModel, type CompressOptions, type CompressResult } from '../deploy/compress-model.ts';
import { evaluateCompression, type CompressionEvaluation } from '../deploy/compression-eval.ts';
import { exportLoadedFold } from '../deploy/export-model.ts';
import { QuantizeError } from '../deploy/quantize.ts';
import type { PruneSummary } from '../deploy/prune.ts';
import { writeCompressedModelCard, type ModelCardCompression } from '../eval/report/modelcard.ts';
import { hardwareInfo } from '../eval/statistics/timing.ts';
import { disposeModel, loadModel, prepareInput, type LoadedModel } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import { modelCardPaths } from '../plan/model-folder.ts';
import type { ProgressReporter } from '../util/progress.ts';
import { fineTunePruned } from './finetune-pruned.ts';
import { readFoldSplit, type Split } from './splits.ts';

export interface CompressFolderOptions extends Omit<CompressOptions, 'fineTune'> {
  /** The dataset folder the model was trained on: the fold's training cases fine-tune, its validation cases score the compression. */
  dataset?: string;
  /** Fine-tune after pruning for at most this many minutes (needs `prune` and `dataset`). */
  fineTune?: { minutes: number; lrScale?: number; progress?: ProgressReporter };
  /** Validation cases scored (default: every one of the fold's). */
  validationCases?: number;
  /** Write the compressed model's card beside the file (default true). */
  card?: boolean;
}

export interface CompressFolderResult extends CompressResult {
  evaluation: CompressionEvaluation | null;
  card: { markdownPath: string; jsonPath: string } | null;
}

/** Where the card of a compressed model file goes: `x.onnx` -> `x.model-card.md` / `x.model-card.json`. */
export function compressedCardPaths(file: string): { markdown: string; json: string } {
  const stem = file.replace(/\.onnx$/i, '');
  return { markdown: `${stem}.model-card.md`, json: `${stem}.model-card.json` };
}

/** The validation cases of a split, read from the dataset and preprocessed with the model's plan (with their labels). */
export async function validationCases(model: LoadedModel, dataset: string, split: Split, limit?: number): Promise<PreprocessedCase[]> {
  const ds = readDataset(dataset);
  const ids = split.val.slice(0, limit ?? split.val.length);
  const out: PreprocessedCase[] = [];
  for (const id of ids) {
    const c = ds.training.find((x) => x.id === id);
    if (!c || !c.labelPath) throw new QuantizeError(`validation case ${id} is not a labelled case of ${ds.name}: give the dataset the model was trained on`);
    const images = await Promise.all(c.imagePaths.map((p) => readVolume(p)));
    const label = await readVolume(c.labelPath);
    out.push(prepareInput(model.plan, images, Uint8Array.from(label.data as ArrayLike<number>)).case);
  }
  return out;
}

function pruningStep(p: PruneSummary): string {
  const what =
    p.kind === 'channels'
      ? `structured pruning at ${p.sparsity}: ${p.groups!.length} channel groups narrowed (channels ${p.groups!.reduce((a, g) => a + g.before, 0)} -> ${p.groups!.reduce((a, g) => a + g.after, 0)}), ${p.leftWhole!.length} left whole; parameters ${p.parameters.before} -> ${p.parameters.after}`
      : `magnitude pruning at ${p.sparsity} (${p.scope}): non-zero parameters ${p.parameters.before} -> ${p.parameters.after}`;
  const f = p.fineTuned;
  const tuned = f
    ? `; fine-tuned ${f.minutes.toFixed(2)} of ${f.budgetMinutes} min (${f.epochs} epochs, ${f.iterations} steps, lr ${f.lr}), validation Dice ${f.validationDiceBefore.toFixed(4)} -> ${f.validationDice.toFixed(4)}`
    : '; not fine-tuned';
  return what + tuned;
}

export async function compressModelFolder(modelDir: string, out: string, o: CompressFolderOptions): Promise<CompressFolderResult> {
  if (o.fineTune && !o.prune) throw new QuantizeError('fine-tuning follows pruning: give --prune <sparsity> too');
  if (o.fineTune && !o.dataset) throw new QuantizeError('fine-tuning needs the dataset the model was trained on (--dataset <folder>)');
  const ft = o.fineTune;
  const r = await compressModel(modelDir, out, {
    ...o,
    fineTune: ft
      ? (net, plan, pruning, fold) =>
          fineTunePruned(net, plan, pruning, {
            dataset: o.dataset!,
            split: readFoldSplit(modelDir, fold),
            minutes: ft.minutes,
            lrScale: ft.lrScale,
            progress: ft.progress,
          })
      : undefined,
  });
  let evaluation: CompressionEvaluation | null = null;
  const model = loadModel(modelDir, { folds: [r.fold], checkpoint: o.checkpoint });
  try {
    if (o.dataset) {
      const cases = await validationCases(model, o.dataset, readFoldSplit(modelDir, r.fold), o.validationCases);
      evaluation = evaluateCompression(exportLoadedFold(model, 0).bytes, readFileSync(out), cases, model.plan);
    }
  } finally {
    disposeModel(model);
  }
  let card: CompressFolderResult['card'] = null;
  if (o.card ?? true) {
    const q = r.quantization;
    const steps = [
      ...(r.pruning ? [pruningStep(r.pruning)] : []),
      ...(q
        ? [
            `static int8 (${q.format}): ${q.weights} weights, ${q.activations} activations, ${q.calibrator.kind} calibrator on ${q.calibrationInputs} training patches; quantized ${Object.entries(
              q.quantized,
            )
              .map(([op, n]) => `${n} ${op}`)
              .join(', ')}${q.leftFp32.length ? `; fp32: ${[...new Set(q.leftFp32.map((l) => l.op))].join(', ')}` : ''}`,
          ]
        : []),
      ...(r.dynamicQuantization
        ? [
            `dynamic int8 for the linear layers: ${r.dynamicQuantization.quantized} weight MatMuls (${r.dynamicQuantization.weights}, activations quantized on every run), ${r.dynamicQuantization.leftFp32.length} attention MatMuls fp32`,
          ]
        : []),
    ];
    const hw = hardwareInfo();
    const c: ModelCardCompression = {
      file: basename(out),
      steps,
      bytes: { original: r.fp32Bytes, compressed: r.bytes },
      passMs: r.latency && { patch: r.latency.patch, original: r.latency.fp32Ms, compressed: r.latency.compressedMs },
      caseMs: evaluation?.caseMs ?? null,
      hardware: `${hw.cpuModel}, ${hw.cores} cores, onnxruntime CPU`,
      dice: evaluation && {
        cases: evaluation.cases,
        protocol: evaluation.protocol,
        original: evaluation.dice.original,
        compressed: evaluation.dice.compressed,
        delta: evaluation.deltaDice,
        worstRatio: evaluation.worstRatio,
        gates: evaluation.gates,
      },
    };
    card = writeCompressedModelCard(compressedCardPaths(out), modelCardPaths(modelDir), c);
  }
  return { ...r, evaluation, card };
}
