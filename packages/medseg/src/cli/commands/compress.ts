/**
 * `medseg compress <model> [--int8 --calibration <dataset>] [--prune <s> [--structured]] --out <file.onnx|folder>`:
 * one fold of a model folder as a static int8 and/or pruned ONNX model
 * (deploy/compress-model.ts), with the time of one network pass of the
 * unpruned fp32 model and of the compressed one in onnxruntime on this
 * machine; or, with --prune alone and a folder for --out, a pruned model
 * folder (deploy/prune-model.ts) that predict, export and compress read.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CheckpointChoice } from '../../plan/model-folder.ts';
import { CliBadInputError, CliUsageError } from '../errors.ts';
import { printResult } from '../output.ts';

interface CompressCliOptions {
  int8?: boolean;
  dynamicInt8?: boolean;
  calibration?: string;
  calibrationCases: number;
  calibrator: 'minmax' | 'percentile' | 'entropy';
  percentile: number;
  prune?: number;
  structured?: boolean;
  pruneScope?: 'global' | 'layer';
  out: string;
  fold?: number;
  checkpoint?: CheckpointChoice;
  timedPasses: number;
  dataset?: string;
  finetuneMinutes?: number;
  finetuneLrScale: number;
  validationCases?: number;
  card: boolean;
}

const wholeNumber =
  (min: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}, got '${value}'`);
    return n;
  };

function parsePercentile(value: string): number {
  const p = Number(value);
  if (!(p > 50 && p <= 100)) throw new InvalidArgumentError(`expected a percentile in (50, 100], got '${value}'`);
  return p;
}

function parseSparsity(value: string): number {
  const s = Number(value);
  if (!(value.trim() !== '' && s >= 0 && s < 1)) throw new InvalidArgumentError(`expected a sparsity in [0, 1), got '${value}'`);
  return s;
}

function positive(value: string): number {
  const n = Number(value);
  if (!(value.trim() !== '' && Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected a number > 0, got '${value}'`);
  return n;
}

const percent = (a: number, b: number): string => `${((100 * (b - a)) / a).toFixed(1)} %`;

export function register(program: Command): void {
  program
    .command('compress')
    .description('compress one fold of a model folder to an int8 and/or pruned ONNX model, or prune a model folder')
    .argument('<model>', 'model folder written by `medseg train`')
    .option('--int8', 'static int8 quantization: per-channel int8 weights, calibrated uint8 activations (needs --calibration)')
    .option(
      '--dynamic-int8',
      'dynamic int8 for the linear layers (weight MatMuls of the transformer blocks): int8 weights, activation ranges computed on every run; with --int8 the convolutions stay static int8',
    )
    .option('--calibration <dataset>', 'dataset folder whose training cases calibrate the activation ranges')
    .option('--calibration-cases <n>', 'training cases to calibrate on (one centre patch of each)', wholeNumber(1), 8)
    .addOption(
      new Option('--calibrator <kind>', 'activation range: min-max, a percentile of the values, or the KL-divergence (entropy) threshold')
        .choices(['minmax', 'percentile', 'entropy'])
        .default('minmax'),
    )
    .option('--percentile <p>', 'the percentile calibrator keeps values between (100 - p) % and p %', parsePercentile, 99.99)
    .option(
      '--prune <sparsity>',
      'prune before the export: this fraction of the conv/linear weights (magnitude) or of each channel group (--structured), 0..1',
      parseSparsity,
    )
    .option(
      '--structured',
      'with --prune: remove whole output channels by the L1 norm of their filters (a smaller network), with every tensor that depends on them',
    )
    .addOption(
      new Option('--prune-scope <scope>', 'magnitude pruning: one threshold over all layers, or each layer to the sparsity').choices(['global', 'layer']),
    )
    .option(
      '--dataset <folder>',
      'the dataset the model was trained on: its fold training cases fine-tune, its validation cases score the compressed model for its card (and calibrate --int8 without --calibration)',
    )
    .option('--finetune-minutes <m>', 'with --prune: train the pruned network further for at most this many minutes (needs --dataset)', positive)
    .option('--finetune-lr-scale <f>', 'fine-tuning learning rate relative to the plan', positive, 0.1)
    .option('--validation-cases <n>', 'validation cases the compressed model is scored on (default: all of the fold)', wholeNumber(1))
    .option('--no-card', 'do not write the compressed model card (<out>.model-card.md / .json)')
    .requiredOption('--out <file.onnx|folder>', 'the .onnx file to write; with --prune alone a folder name writes a pruned model folder')
    .option('--fold <n>', 'the fold to compress (default: the first trained fold; a pruned model folder: every fold)', wholeNumber(0))
    .addOption(new Option('--checkpoint <which>', 'weights: best, final or averaged; default best, else final').choices(['best', 'final', 'averaged']))
    .option('--timed-passes <n>', 'network passes timed per model (0: no timing)', wholeNumber(0), 10)
    .addHelpText(
      'after',
      `
The .onnx model keeps the export's metadata (key 'medseg': the plan's preprocessing). --int8 adds
'medseg.quantization' (calibrator, cases, quantized ops, what stays fp32 and why) and
'medseg.calibration' (the cases used). onnxruntime runs its Convs as QLinearConv; ConvTranspose
stays fp32 (onnxruntime has no int8 ConvTranspose kernel on CPU) and so does the logits head.
--dynamic-int8 adds 'medseg.dynamic-quantization': the weight MatMuls (linear layers of the
transformer blocks) as DynamicQuantizeLinear + MatMulInteger (7-bit weights: no int16 saturation
on CPUs without VNNI), which onnxruntime fuses into DynamicQuantizeMatMul; attention stays fp32.
--prune adds 'medseg.pruning': per layer the zeros (magnitude), or per channel group the channels
removed and the groups left whole with why (--structured). Biases, norms and the logits heads are
never pruned; channels joined by a residual add go together. --finetune-minutes M trains the pruned
network further on the fold's training cases of --dataset (the model folder's split) with the
plan's trainer for at most M minutes (magnitude zeros held fixed), keeping the epoch with the best
validation Dice; the record (budget, minutes, epochs, steps, Dice before/after) is part of
'medseg.pruning'. With --prune and --int8, the network is pruned (and fine-tuned) first, then quantized.

With --dataset, both the fp32 export and the compressed model predict the fold's validation cases
(onnxruntime, the plan's sliding window, no TTA) and <out>.model-card.md / .json are written: the
model's card with a 'Compressed model' section (size, latency per network pass and per case,
ΔDice mean and worst case, and the quality gate: >= 99 % and >= 99.9 % of the fp32 Dice).

Examples:
  medseg compress model/ --int8 --calibration data/Dataset004_Hippocampus --out hippocampus-int8.onnx
  medseg compress model/ --prune 0.3 --structured --int8 --calibration data/Dataset004_Hippocampus --out small-int8.onnx
  medseg compress model/ --prune 0.3 --structured --finetune-minutes 10 --int8 --calibrator entropy --dataset data/Dataset004_Hippocampus --out small-int8.onnx
  medseg compress model/ --prune 0.5 --structured --out model-pruned/        (then: medseg predict model-pruned/ ...)`,
    )
    .action(async (model: string, o: CompressCliOptions, cmd: Command) => {
      if (!o.int8 && !o.dynamicInt8 && o.prune === undefined)
        throw new CliUsageError('nothing to do: give --int8, --dynamic-int8, --prune <sparsity>, or some of them');
      const calibration = o.calibration ?? o.dataset;
      if (o.int8 && !calibration)
        throw new CliUsageError('--int8 needs --calibration <dataset> or --dataset <folder> (its training cases calibrate the activations)');
      if (o.finetuneMinutes !== undefined && o.prune === undefined) throw new CliUsageError('--finetune-minutes goes with --prune <sparsity>');
      if (o.finetuneMinutes !== undefined && !o.dataset)
        throw new CliUsageError('--finetune-minutes needs --dataset <folder> (the dataset the model was trained on)');
      if (o.structured && o.prune === undefined) throw new CliUsageError('--structured goes with --prune <sparsity>');
      if (o.pruneScope && (o.prune === undefined || o.structured))
        throw new CliUsageError('--prune-scope goes with --prune (magnitude pruning, not --structured)');
      const onnx = o.out.toLowerCase().endsWith('.onnx');
      if ((o.int8 || o.dynamicInt8) && !onnx) throw new CliUsageError(`--out names the .onnx file to write, got ${o.out}`);
      const prune = o.prune === undefined ? undefined : { sparsity: o.prune, structured: o.structured ?? false, scope: o.pruneScope };
      const { QuantizeError } = await import('../../deploy/quantize.ts');
      const { UnsupportedOpError } = await import('../../deploy/export-onnx.ts');
      const { PruneError } = await import('../../deploy/prune.ts');
      const typed = (e: unknown): unknown =>
        e instanceof QuantizeError || e instanceof UnsupportedOpError || e instanceof PruneError ? new CliBadInputError(e.message) : e;

      if (!onnx && o.finetuneMinutes !== undefined)
        throw new CliUsageError(`--finetune-minutes writes a fine-tuned .onnx model; give --out a .onnx file, not ${o.out}`);
      if (!onnx) {
        const { pruneModelFolder } = await import('../../deploy/prune-model.ts');
        let r: ReturnType<typeof pruneModelFolder>;
        try {
          r = pruneModelFolder(model, o.out, { ...prune!, folds: o.fold === undefined ? undefined : [o.fold], checkpoint: o.checkpoint });
        } catch (e) {
          throw typed(e);
        }
        printResult(cmd, r, () =>
          r.folds
            .map((f) => {
              const p = f.summary.parameters;
              const what =
                f.summary.kind === 'channels'
                  ? `${f.summary.groups!.length} channel groups pruned, ${f.summary.leftWhole!.length} left whole`
                  : `${(f.summary.layers ?? []).length} layers pruned`;
              return `fold ${f.fold}: ${f.weights}  ${what}; ${f.summary.kind === 'channels' ? 'parameters' : 'non-zero parameters'} ${p.before} -> ${p.after} (${percent(p.before, p.after)}), MACs per patch ${f.macs.before} -> ${f.macs.after} (${percent(f.macs.before, f.macs.after)})`;
            })
            .join('\n'),
        );
        return;
      }

      const { compressModelFolder } = await import('../../pipeline/compress-folder.ts');
      const { FineTuneError } = await import('../../pipeline/finetune-pruned.ts');
      let r: Awaited<ReturnType<typeof compressModelFolder>>;
      try {
        r = await compressModelFolder(model, o.out, {
          int8: o.int8
            ? {
                dataset: calibration!,
                cases: o.calibrationCases,
                calibrator: o.calibrator === 'percentile' ? { kind: 'percentile', percentile: o.percentile } : { kind: o.calibrator },
              }
            : undefined,
          dynamicInt8: o.dynamicInt8,
          prune,
          fold: o.fold,
          checkpoint: o.checkpoint,
          timedPasses: o.timedPasses,
          dataset: o.dataset,
          fineTune: o.finetuneMinutes === undefined ? undefined : { minutes: o.finetuneMinutes, lrScale: o.finetuneLrScale },
          validationCases: o.validationCases,
          card: o.card,
        });
      } catch (e) {
        throw e instanceof FineTuneError ? new CliBadInputError(e.message) : typed(e);
      }
      const s = r.quantization;
      const cal = s
        ? s.calibrator.kind === 'percentile'
          ? `percentile ${s.calibrator.percentile}`
          : s.calibrator.kind === 'entropy'
            ? 'entropy'
            : 'min-max'
        : '';
      const ev = r.evaluation;
      const ft = r.pruning?.fineTuned;
      const dq = r.dynamicQuantization;
      const label = [r.pruning ? 'pruned' : '', s ? 'int8' : '', dq ? 'dynamic-int8' : ''].filter(Boolean).join('+');
      const pr = r.pruning;
      printResult(cmd, { ...r }, () =>
        [
          `fold ${r.fold}: ${r.path}  (${(r.bytes / 1e6).toFixed(2)} MB, fp32 ${(r.fp32Bytes / 1e6).toFixed(2)} MB)`,
          pr
            ? `pruned (${pr.kind}, sparsity ${pr.sparsity}): ${pr.kind === 'channels' ? 'parameters' : 'non-zero parameters'} ${pr.parameters.before} -> ${pr.parameters.after} (${percent(pr.parameters.before, pr.parameters.after)})${pr.kind === 'channels' ? `, ${pr.groups!.length} channel groups pruned, ${pr.leftWhole!.length} left whole` : ''}`
            : '',
          s
            ? `int8: ${Object.entries(s.quantized)
                .map(([op, n]) => `${n} ${op}`)
                .join(', ')}; ${s.activations} activations (${s.activationTensors} tensors, ${cal} on ${r.casesUsed.length} training cases)`
            : '',
          ft
            ? `fine-tuned ${ft.minutes.toFixed(2)} of ${ft.budgetMinutes} min: ${ft.epochs} epochs, ${ft.iterations} steps; validation Dice ${ft.validationDiceBefore.toFixed(4)} -> ${ft.validationDice.toFixed(4)} (best epoch ${ft.bestEpoch + 1})`
            : '',
          ...(s?.leftFp32 ?? []).map((l) => `fp32: ${l.op} ${l.reason}`),
          dq ? `dynamic int8: ${dq.quantized} MatMuls (${dq.weights}), ${dq.leftFp32.length} left fp32 (attention)` : '',
          r.latency
            ? `one network pass [${r.latency.patch.join(', ')}] in onnxruntime: fp32 ${r.latency.fp32Ms.toFixed(1)} ms, ${label} ${r.latency.compressedMs.toFixed(1)} ms (${r.latency.speedup.toFixed(2)}x)`
            : '',
          ev
            ? `validation (${ev.cases} cases): Dice fp32 ${ev.dice.original.mean.toFixed(4)} -> ${label} ${ev.dice.compressed.mean.toFixed(4)}; ΔDice mean ${ev.deltaDice.mean.toFixed(4)}, worst ${ev.deltaDice.worst.toFixed(4)} (${ev.deltaDice.worstCase}); per case ${ev.caseMs.original.toFixed(0)} -> ${ev.caseMs.compressed.toFixed(0)} ms; gate ${ev.gates.map((g) => `${100 * g.fraction} %: mean ${g.mean ? 'pass' : 'FAIL'}, worst ${g.worstCase ? 'pass' : 'FAIL'}`).join('; ')}`
            : '',
          r.card ? `model card: ${r.card.markdownPath}` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });
}
