/**
 * The formats a prediction can be written in (DICOM input can also give an
 * RTSTRUCT), the default for an input (its own format; a DICOM series gives a
 * DICOM SEG), and the error for an option
 * that cannot be honoured (a format the input cannot take, a device this
 * build cannot use).
 */

export const OUTPUT_FORMATS = ['nifti', 'nrrd', 'png', 'dicom-seg', 'rtstruct'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** An option of `predict` that cannot be honoured for this input or this build; says what to use instead. */
export class PredictOptionError extends Error {
  override readonly name = 'PredictOptionError';
}

export function isOutputFormat(s: string): s is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(s);
}

/** The input's own format: NIfTI and NRRD stay so, 2D images give PNG, DICOM gives DICOM SEG. */
export function defaultOutputFormat(source: { kind: 'image'; path: string } | { kind: 'dicom' }): OutputFormat {
  if (source.kind === 'dicom') return 'dicom-seg';
  const p = source.path.toLowerCase();
  if (p.endsWith('.nrrd') || p.endsWith('.nhdr')) return 'nrrd';
  if (/\.(png|tiff?|jpe?g|bmp|gif)$/.test(p)) return 'png';
  return 'nifti';
}
