/**
 * `medseg export <model> --out <path>`: the trained network(s) of a model
 * folder as ONNX (deploy/export-model.ts), each with the plan's
 * preprocessing in its metadata. One fold writes one .onnx file; several
 * write a folder with fold_<k>/model.onnx and manifest.json.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CheckpointChoice } from '../../plan/model-folder.ts';
import { CliBadInputError, CliUsageError } from '../errors.ts';
import { printResult } from '../output.ts';

interface ExportCliOptions {
  out: string;
  fold?: number | 'all';
  checkpoint?: CheckpointChoice;
}

function parseFold(value: string): number | 'all' {
  if (value === 'all') return 'all';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a fold number (0, 1, ...) or 'all', got '${value}'`);
  return n;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export the trained network of a model folder to ONNX (opset 17, dynamic batch and, where the architecture allows, spatial size)')
    .argument('<model>', 'model folder written by `medseg train`')
    .requiredOption('--out <path>', 'the .onnx file to write (one fold), or a folder for several folds (fold_<k>/model.onnx + manifest.json)')
    .option('--fold <n|all>', 'the fold to export, or all trained folds (the default)', parseFold)
    .addOption(
      new Option('--checkpoint <which>', 'weights of each fold: best, final or averaged; default best, else final').choices(['best', 'final', 'averaged']),
    )
    .addHelpText(
      'after',
      `
The model's metadata (key 'medseg', JSON) holds the plan's preprocessing: target spacing,
normalisation scheme and statistics, patch size, labels, sliding-window and TTA settings
(mirror axes), the network config and the medseg version. Architectures whose graph changes
with the input size (transunet, swin-unetr) keep the plan's patch size; the metadata says why.

Examples:
  medseg export model/ --out hippocampus.onnx --fold 0
  medseg export model/ --out hippocampus-onnx/            (every fold, with manifest.json)`,
    )
    .action(async (model: string, o: ExportCliOptions, cmd: Command) => {
      const { exportModelFolder, ExportOptionError } = await import('../../deploy/export-model.ts');
      const { UnsupportedOpError } = await import('../../deploy/export-onnx.ts');
      const { TraceError } = await import('@medseg/torch');
      let r: Awaited<ReturnType<typeof exportModelFolder>>;
      try {
        r = exportModelFolder(model, o.out, { fold: o.fold, checkpoint: o.checkpoint });
      } catch (e) {
        if (e instanceof ExportOptionError) throw new CliUsageError(e.message);
        if (e instanceof UnsupportedOpError || e instanceof TraceError) throw new CliBadInputError(e.message);
        throw e;
      }
      const first = r.info[0]!;
      printResult(
        cmd,
        { path: r.path, files: r.files, dynamicAxes: first.dynamicAxes, fixedAxes: first.fixedAxes, input: first.input, output: first.output },
        () =>
          [
            ...r.files.map((f) => `fold ${f.fold}: ${f.path}  (${(f.bytes / 1e6).toFixed(2)} MB)`),
            `input ${first.input.name} [${first.input.shape.join(', ')}]  output ${first.output.name} [${first.output.shape.join(', ')}]`,
            ...first.fixedAxes.map((f) => `fixed ${f.name} = ${f.size}: ${f.reason}`),
            r.files.length > 1 ? `manifest: ${r.path}/manifest.json` : '',
          ]
            .filter(Boolean)
            .join('\n'),
      );
    });
}
