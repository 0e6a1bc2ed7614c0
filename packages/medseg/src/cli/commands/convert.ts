/** `medseg convert <DICOM folder> <out.nii.gz|.nii|.nrrd>`: one DICOM series to a NIfTI or NRRD volume. */
import type { Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { log, printResult } from '../output.ts';

const OUTPUT = /\.(nii\.gz|nii|nrrd)$/i;

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a DICOM series (any transfer syntax medseg decodes) to NIfTI or NRRD')
    .argument('<dicom>', 'DICOM folder (searched recursively) or one DICOM file')
    .argument('<out>', 'output volume: .nii.gz, .nii or .nrrd')
    .option('--series <uid>', 'SeriesInstanceUID to convert when the folder holds several image series')
    .option('--allow-gaps', 'accept missing slices or uneven spacing (stacked at the median spacing, with a warning)')
    .addHelpText(
      'after',
      `
Orientation and spacing follow the DICOM geometry (ImagePositionPatient /
ImageOrientationPatient); NIfTI gets the RAS affine, NRRD LPS. CT and other
rescaled series are written as float32 in their rescaled units (HU); others
keep their stored integer type. MONOCHROME1 is inverted, colour becomes RGB.
Unreadable files in the folder are skipped with a warning naming them.`,
    )
    .action(async (dicom: string, out: string, o: { series?: string; allowGaps?: boolean }, cmd: Command) => {
      if (!OUTPUT.test(out)) throw new CliUsageError(`output must end in .nii.gz, .nii or .nrrd: ${out}`);
      const { readDicomSeries } = await import('../../io/dicom/series.ts');
      const { writeVolume } = await import('../../io/read.ts');
      const v = await readDicomSeries(dicom, {
        ...(o.series !== undefined ? { seriesInstanceUID: o.series } : {}),
        ...(o.allowGaps ? { allowGaps: true } : {}),
      });
      const warnings = (v.meta.extra?.warnings as string[] | undefined) ?? [];
      for (const w of warnings) log(`warning: ${w}`);
      await writeVolume(out, v);
      const info = {
        output: out,
        seriesInstanceUID: v.meta.seriesInstanceUID,
        modality: v.meta.modality,
        size: v.size,
        spacing: v.spacing,
        transferSyntaxUID: v.meta.extra?.transferSyntaxUID,
        warnings,
      };
      printResult(
        cmd,
        info,
        () => `wrote ${out}: ${v.meta.modality ?? ''} ${v.size.join('x')} voxels, spacing ${v.spacing.map((s) => +s.toFixed(4)).join(' x ')} mm`,
      );
    });
}
