/**
 * Preprocessing in a web page from an exported model's metadata, for images
 * already at the plan's target spacing: crop to the nonzero bounding box and
 * normalise each channel per the plan, with the same code as training and
 * prediction (data/normalize.ts). Resampling stays on the server side: an
 * image at another spacing is a clear error here.
 */
import type { OnnxModelInfo } from '../model-info.ts';
import { boxShape, cropArray, nonzeroBox, normalizeChannel, type Box } from '../../data/normalize.ts';
import { WebModelError } from './web-model.ts';

type Zyx = [number, number, number];

export interface WebPreprocessed {
  /** Normalised channels, float32 [C, Z, Y, X] of the cropped box. */
  data: Float32Array;
  shape: Zyx;
  /** Where the crop sits in the input grid, [start, end) per axis. */
  box: Box;
}

/**
 * image: float32 [C, Z, Y, X] (x fastest), spacing [z, y, x] mm. Throws
 * WebModelError when channels or spacing do not fit the model. For 2D models
 * only the in-plane spacing has to match.
 */
export function preprocessAtTargetSpacing(info: OnnxModelInfo, image: Float32Array, shape: Zyx, spacing: Zyx): WebPreprocessed {
  const channels = info.channels.length;
  const n = shape[0] * shape[1] * shape[2];
  if (image.length !== channels * n) {
    throw new WebModelError(
      `the model takes ${channels} channel(s) (${info.channels.join(', ')}); ${image.length} values do not make ${channels} × [${shape.join(', ')}]`,
    );
  }
  const axes = info.dims === '2d' ? [1, 2] : [0, 1, 2];
  for (const a of axes) {
    const want = info.targetSpacing[a]!;
    if (Math.abs(spacing[a]! - want) > 1e-3 * want) {
      throw new WebModelError(
        `the image spacing [${spacing.join(', ')}] mm is not the model's [${info.targetSpacing.join(', ')}] mm; resample it first (medseg predict does)`,
      );
    }
  }
  const box = nonzeroBox(image, channels, shape);
  const cshape = boxShape(box);
  const data = cropArray(image, channels, shape, box);
  const m = cshape[0] * cshape[1] * cshape[2];
  let mask: Uint8Array | null = null;
  if (info.normalization.some((x) => x.useMaskForNorm)) {
    mask = new Uint8Array(m);
    for (let c = 0; c < channels; c++) for (let i = 0; i < m; i++) if (data[c * m + i] !== 0) mask[i] = 1;
  }
  for (let c = 0; c < channels; c++) normalizeChannel(data.subarray(c * m, (c + 1) * m), info.normalization[c]!, mask);
  return { data, shape: cshape, box };
}

/** Zero-pads [C, Z, Y, X] at the end of each axis to a multiple of `multiple` (per axis), for a network that halves the size. */
export function padToMultiple(data: Float32Array, channels: number, shape: Zyx, multiple: Zyx): { data: Float32Array; shape: Zyx } {
  const [z, y, x] = shape;
  const [Z, Y, X] = shape.map((s, i) => Math.ceil(s / multiple[i]!) * multiple[i]!) as Zyx;
  const out = new Float32Array(channels * Z * Y * X);
  for (let c = 0; c < channels; c++)
    for (let k = 0; k < z; k++)
      for (let j = 0; j < y; j++) out.set(data.subarray(((c * z + k) * y + j) * x, ((c * z + k) * y + j + 1) * x), ((c * Z + k) * Y + j) * X);
  return { data: out, shape: [Z, Y, X] };
}

/** The total downsampling per axis of the exported network: the product of its per-stage strides. */
export function networkStride(info: OnnxModelInfo): Zyx {
  const strides = info.network.strides;
  const out = [1, 1, 1];
  for (const s of strides) s.forEach((v, i) => (out[i + (3 - s.length)]! *= v));
  return out as Zyx;
}
