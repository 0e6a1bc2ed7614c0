/** `medseg register <fixed> <moving> --out <dir>`: affine + deformable registration, writing the warped image, the field and warped labels. */
import { Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { parseNonNegative, parsePositiveInt, printResult } from '../output.ts';

interface RegisterCliOptions {
  out: string;
  movingLabels?: string;
  affineOnly?: boolean;
  model?: string;
  similarity: 'lncc' | 'mi' | 'ncc';
  affineSimilarity: 'ncc' | 'mi';
  diffeomorphic?: boolean;
  iterations?: number;
  smoothness?: number;
}

export function register(program: Command): void {
  program
    .command('register')
    .description('register a moving image to a fixed one (affine, then deformable) and warp its labels')
    .argument('<fixed>', 'fixed image (NIfTI, NRRD or a DICOM series): the output geometry')
    .argument('<moving>', 'moving image, warped onto the fixed one')
    .requiredOption('--out <dir>', 'output folder')
    .option('--moving-labels <file>', "the moving image's label map, warped with nearest neighbour")
    .option('--affine-only', 'stop after the affine stage')
    .option('--model <dir>', 'a trained registration model folder: it predicts the deformable field instead of per-pair optimisation')
    .addOption(
      new Option('--similarity <name>', 'deformable similarity: local NCC (window 9), mutual information or global NCC')
        .choices(['lncc', 'mi', 'ncc'])
        .default('lncc'),
    )
    .addOption(new Option('--affine-similarity <name>', 'affine similarity').choices(['ncc', 'mi']).default('ncc'))
    .option('--diffeomorphic', 'optimise a velocity field integrated by scaling and squaring (7 steps)')
    .option('--iterations <n>', 'deformable optimisation steps (default 150)', parsePositiveInt)
    .option('--smoothness <weight>', 'weight of the diffusion penalty (default 1)', parseNonNegative)
    .addHelpText(
      'after',
      `
Writes, in the fixed image's geometry: warped.nii.gz (the moving image),
field.nii.gz (the displacement, NIfTI vector intent: at each fixed voxel the
vector in LPS mm to the moving point it samples, ITK's convention),
warped-labels.nii.gz (with --moving-labels) and registration.json (the affine,
the fraction of folding voxels, timings).`,
    )
    .action(async (fixed: string, moving: string, o: RegisterCliOptions, cmd: Command) => {
      if (o.affineOnly && o.model) throw new CliUsageError('--affine-only and --model contradict each other');
      const { registerFiles } = await import('../../registration/register-files.ts');
      const r = await registerFiles(fixed, moving, o.out, {
        movingLabels: o.movingLabels,
        affineOnly: o.affineOnly,
        model: o.model,
        affine: { similarity: o.affineSimilarity },
        deformable: {
          similarity: o.similarity,
          diffeomorphic: o.diffeomorphic,
          ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
          ...(o.smoothness !== undefined ? { smoothness: o.smoothness } : {}),
        },
      });
      printResult(
        cmd,
        { ...r },
        () =>
          `registered ${moving} to ${fixed} (${r.method}) in ${(r.seconds.affine + r.seconds.deformable).toFixed(1)} s: folding ${(100 * r.foldingFraction).toFixed(3)}% of voxels\nwrote ${[r.warpedImage, r.field, r.warpedLabels, r.summary].filter(Boolean).join(', ')}`,
      );
    });
}
