/**
 * `medseg compress <model> --int8 --calibration <dataset> --out <file.onnx>`:
 * one fold of a model folder as a static int8 ONNX model (deploy/compress-model.ts),
 * activations calibrated on training cases of a dataset, with the fp32 and
 * int8 time of one network pass in onnxruntime on this machine.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliBadInputError, CliUsageError } from '../errors.ts';
import { printResult } from '../output.ts';

interface CompressCliOptions {
  int8?: boolean;
  calibration: string;
  calibrationCases: number;
  calibrator: 'minmax' | 'percentile';
  percentile: number;
  out: string;
  fold?: number;
  checkpoint?: 'best' | 'final';
  timedPasses: number;
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

export function register(program: Command): void {
  program
    .command('compress')
    .description('compress one fold of a model folder to an int8 ONNX model (static QDQ quantization calibrated on training cases)')
    .argument('<model>', 'model folder written by `medseg train`')
    .option('--int8', 'static int8 quantization: per-channel int8 weights, calibrated uint8 activations')
    .requiredOption('--calibration <dataset>', 'dataset folder whose training cases calibrate the activation ranges')
    .option('--calibration-cases <n>', 'training cases to calibrate on (one centre patch of each)', wholeNumber(1), 8)
    .addOption(new Option('--calibrator <kind>', 'activation range: min-max or a percentile of the values').choices(['minmax', 'percentile']).default('minmax'))
    .option('--percentile <p>', 'the percentile calibrator keeps values between (100 - p) % and p %', parsePercentile, 99.99)
    .requiredOption('--out <file.onnx>', 'the int8 .onnx file to write')
    .option('--fold <n>', 'the fold to compress (default: the first trained fold)', wholeNumber(0))
    .addOption(new Option('--checkpoint <which>', 'weights: best or final; default best, else final').choices(['best', 'final']))
    .option('--timed-passes <n>', 'network passes timed per engine (0: no timing)', wholeNumber(0), 10)
    .addHelpText(
      'after',
      `
The int8 model keeps the export's metadata (key 'medseg': the plan's preprocessing) and adds
'medseg.quantization' (calibrator, cases, quantized ops, what stays fp32 and why) and
'medseg.calibration' (the cases used). onnxruntime runs its Convs as QLinearConv; ConvTranspose
stays fp32 (onnxruntime has no int8 ConvTranspose kernel on CPU) and so does the logits head.

Example:
  medseg compress model/ --int8 --calibration data/Dataset004_Hippocampus --out hippocampus-int8.onnx`,
    )
    .action(async (model: string, o: CompressCliOptions, cmd: Command) => {
      if (!o.int8) throw new CliUsageError('nothing to do: give --int8 (the only compression medseg compress has so far)');
      if (!o.out.toLowerCase().endsWith('.onnx')) throw new CliUsageError(`--out names the .onnx file to write, got ${o.out}`);
      const { compressModelInt8 } = await import('../../deploy/compress-model.ts');
      const { QuantizeError } = await import('../../deploy/quantize.ts');
      const { UnsupportedOpError } = await import('../../deploy/export-onnx.ts');
      let r: Awaited<ReturnType<typeof compressModelInt8>>;
      try {
        r = await compressModelInt8(model, o.out, {
          dataset: o.calibration,
          cases: o.calibrationCases,
          calibrator: o.calibrator === 'percentile' ? { kind: 'percentile', percentile: o.percentile } : { kind: 'minmax' },
          fold: o.fold,
          checkpoint: o.checkpoint,
          timedPasses: o.timedPasses,
        });
      } catch (e) {
        if (e instanceof QuantizeError || e instanceof UnsupportedOpError) throw new CliBadInputError(e.message);
        throw e;
      }
      const s = r.summary;
      const cal = s.calibrator.kind === 'percentile' ? `percentile ${s.calibrator.percentile}` : 'min-max';
      printResult(cmd, { ...r }, () =>
        [
          `fold ${r.fold}: ${r.path}  (${(r.int8Bytes / 1e6).toFixed(2)} MB, fp32 ${(r.fp32Bytes / 1e6).toFixed(2)} MB)`,
          `int8: ${Object.entries(s.quantized)
            .map(([op, n]) => `${n} ${op}`)
            .join(', ')}; ${s.activations} activations (${s.activationTensors} tensors, ${cal} on ${r.casesUsed.length} training cases)`,
          ...s.leftFp32.map((l) => `fp32: ${l.op} ${l.reason}`),
          r.latency
            ? `one network pass [${r.latency.patch.join(', ')}] in onnxruntime: fp32 ${r.latency.fp32Ms.toFixed(1)} ms, int8 ${r.latency.int8Ms.toFixed(1)} ms (${r.latency.speedup.toFixed(2)}x)`
            : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });
}
