/** `medseg explain <model> <input> --method ...`: where the model looked for a class, and how faithful that map is. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CheckpointChoice } from '../../plan/model-folder.ts';
import { CliUsageError } from '../errors.ts';
import { parseNumberList, printResult, wantsJson } from '../output.ts';

interface ExplainCliOptions {
  method: 'gradcam' | 'gradcampp' | 'attention' | 'occlusion' | 'ig';
  out: string;
  class: number;
  target: 'logit' | 'probability';
  layer?: string;
  box?: number[];
  window?: number[];
  stride?: number[];
  steps?: number;
  baseline?: number;
  fold?: number;
  checkpoint?: CheckpointChoice;
  faithfulness: boolean;
  deletionSteps?: number;
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

export function register(program: Command): void {
  program
    .command('explain')
    .description(
      'explain a segmentation: Grad-CAM(++), attention maps, occlusion or integrated gradients for a class over its predicted mask, with faithfulness checks',
    )
    .argument('<model>', 'model folder written by `medseg train`')
    .argument('<input>', 'an image file (NIfTI, NRRD, PNG/TIFF; for several channels the _0000 file) or a DICOM series folder (heat map as NIfTI)')
    .addOption(
      new Option('--method <method>', 'gradcam, gradcampp (Grad-CAM++), attention (rollout and attention gates), occlusion, ig (integrated gradients)')
        .choices(['gradcam', 'gradcampp', 'attention', 'occlusion', 'ig'])
        .default('gradcam'),
    )
    .option('--out <dir>', 'where to write the heat map, the overlay and the JSON', 'explanations')
    .option('--class <k>', 'the class explained (0 is the background)', parseInteger, 1)
    .addOption(
      new Option('--target <kind>', 'the score summed over the region: the class logit or its softmax probability')
        .choices(['logit', 'probability'])
        .default('logit'),
    )
    .option('--layer <name>', "Grad-CAM layer, a dotted module name (default: the coarsest decoder stage, 'decoder.0' in most networks)")
    .option(
      '--box <x0,y0,z0,x1,y1,z1>',
      "the region explained, as a box on the input's voxel grid (end exclusive); default the class's predicted mask",
      parseNumberList,
    )
    .option('--window <list>', "occlusion window per axis of the network's grid (default a quarter of the plan's patch)", parseNumberList)
    .option('--stride <list>', 'occlusion stride per axis (default half the window)', parseNumberList)
    .option('--steps <n>', 'integrated-gradients path points (default 32)', parseInteger)
    .option('--baseline <value>', 'intensity that occlusion and integrated gradients put in (normalised; default 0, the mean)', parseNumber)
    .option('--fold <n>', 'the fold whose network explains (default the first trained fold)', parseInteger)
    .addOption(new Option('--checkpoint <which>', 'weights: best, final or averaged (default best, else final)').choices(['best', 'final', 'averaged']))
    .option('--no-faithfulness', 'skip the randomisation test and the deletion curve (each costs about one more explanation)')
    .option('--deletion-steps <n>', 'fractions of the deletion curve (default 10)', parseInteger)
    .addHelpText(
      'after',
      `
The region explained is the class's predicted mask (one pass per tile, no TTA), or --box; every
method explains the sum of the class's logit (or probability) over it, tile by tile, blended with
prediction's Gaussian weighting and resampled onto the input's grid. Written to --out:
  <id>_<method>.<nii.gz|nrrd|png>   heat map on the input's grid (PNG: 0-255 scaled to the maximum)
  <id>_<method>_overlay.png         image + predicted-mask outline + heat map
  <id>_<method>_sc/                 DICOM input: that overlay on every slice, a Secondary Capture
                                    series of the source's study (each instance names its slice)
  <id>_<method>.json                settings, share of the heat inside the region, and faithfulness:
                                    Spearman rho against a randomly initialised network, of the maps
                                    and of their absolute values (passes when both are < 0.5), and the
                                    deletion curve's AUC against a random order.

Examples:
  medseg explain model/ case.nii.gz --method gradcam --class 1 --out explain/
  medseg explain model/ case.nii.gz --method occlusion --window 8,8,8 --no-faithfulness`,
    )
    .action(async (model: string, input: string, o: ExplainCliOptions, cmd: Command) => {
      const { explainFile } = await import('../../explain/explain-file.ts');
      const { MedsegExplainError } = await import('../../explain/errors.ts');
      const { createProgress } = await import('../../util/progress.ts');
      if (o.box && o.box.length !== 6) throw new CliUsageError(`--box needs 6 numbers x0,y0,z0,x1,y1,z1 (a 2D image has z0=0, z1=1), got ${o.box.length}`);
      try {
        const r = await explainFile({
          model,
          input,
          out: o.out,
          method: o.method,
          classIndex: o.class,
          kind: o.target,
          layer: o.layer,
          box: o.box ? { start: [o.box[0]!, o.box[1]!, o.box[2]!], end: [o.box[3]!, o.box[4]!, o.box[5]!] } : undefined,
          window: o.window,
          stride: o.stride,
          steps: o.steps,
          baseline: o.baseline,
          foldNumber: o.fold,
          checkpoint: o.checkpoint,
          faithfulness: o.faithfulness,
          deletionSteps: o.deletionSteps,
          progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
        });
        printResult(cmd, r.summary, () => {
          const f = r.summary.faithfulness as {
            randomisation: { spearman: number; spearmanAbs: number; passes: boolean };
            deletion: { auc: number; randomAuc: number };
          } | null;
          return [
            `${r.heat}`,
            ...r.maps,
            `${r.overlay}`,
            ...(r.secondaryCapture ? [`${r.secondaryCapture}/ (Secondary Capture series)`] : []),
            `${r.json}`,
            `heat inside the region: ${((r.summary.massInRegion as number) * 100).toFixed(1)} %`,
            ...(f
              ? [
                  `randomisation test: Spearman rho ${f.randomisation.spearman.toFixed(3)}, of absolute values ${f.randomisation.spearmanAbs.toFixed(3)} (${f.randomisation.passes ? 'passes' : 'FAILS'}: both < 0.5)`,
                  `deletion AUC ${f.deletion.auc.toFixed(3)} (random order ${f.deletion.randomAuc.toFixed(3)}; lower is more faithful)`,
                ]
              : []),
          ].join('\n');
        });
      } catch (e) {
        if (e instanceof MedsegExplainError) throw new CliUsageError(e.message);
        throw e;
      }
    });
}
