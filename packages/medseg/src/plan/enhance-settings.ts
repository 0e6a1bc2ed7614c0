/**
 * The settings of an image-to-image enhancement model (denoising or
 * through-plane super-resolution), their defaults and their checks. The
 * model folder's enhance.json holds them.
 */
export type EnhanceTask = 'denoise' | 'sr';
/** Axis of a [nz, ny, nx] array: 0 = z. */
export type VolumeAxis = 0 | 1 | 2;

export interface EnhanceSettings {
  task: EnhanceTask;
  dims: 2 | 3;
  /** U-Net feature channels per stage, highest resolution first. */
  features: number[];
  /** Training patch and sliding-window tile, [z, y, x] (3D) or the plane's [rows, columns] (2D). */
  patch: number[];
  /** Denoising: Rician noise level (fraction of the 99th-percentile foreground) of the training pairs; 0 = the data's own noise. */
  noise: number;
  /** Denoising: Noise2Void blind-spot training on the (noisy) images alone. */
  selfSupervised: boolean;
  /** Super-resolution: the through-plane factor (thick slices of `factor` thin ones). */
  factor: number;
  /** Super-resolution: the through-plane axis. */
  axis: VolumeAxis;
  loss: 'l1' | 'mse';
}

export const DEFAULT_ENHANCE_SETTINGS: EnhanceSettings = {
  task: 'denoise',
  dims: 2,
  features: [16, 32, 64],
  patch: [64, 64],
  noise: 0.05,
  selfSupervised: false,
  factor: 2,
  axis: 0,
  loss: 'l1',
};

/** Checks settings a user can get wrong; returns them completed. */
export function enhanceSettings(s: Partial<EnhanceSettings>): EnhanceSettings {
  const out = { ...DEFAULT_ENHANCE_SETTINGS, ...s };
  if (s.patch === undefined && out.dims === 3) out.patch = [32, 32, 32];
  if (out.task !== 'denoise' && out.task !== 'sr') throw new RangeError(`enhancement task must be denoise or sr, got ${String(out.task)}`);
  if (out.dims !== 2 && out.dims !== 3) throw new RangeError(`dims must be 2 or 3, got ${String(out.dims)}`);
  if (out.task === 'sr' && out.factor !== 2 && out.factor !== 4) throw new RangeError(`super-resolution factor must be 2 or 4, got ${out.factor}`);
  if (!(out.noise >= 0 && out.noise < 1)) throw new RangeError(`noise level must be in [0, 1), got ${out.noise}`);
  if (out.task === 'denoise' && !out.selfSupervised && !(out.noise > 0))
    throw new RangeError('supervised denoising needs a noise level > 0 to make its noisy inputs');
  if (![0, 1, 2].includes(out.axis)) throw new RangeError(`axis must be 0 (z), 1 (y) or 2 (x), got ${out.axis}`);
  const multiple = 2 ** (out.features.length - 1);
  if (out.patch.length !== out.dims || out.patch.some((p) => !Number.isInteger(p) || p < multiple || p % multiple !== 0)) {
    throw new RangeError(`patch [${out.patch}] must have ${out.dims} sizes, each a multiple of ${multiple}`);
  }
  return out;
}

/** The axis a 2D model's planes are stacked along: z, unless z is the super-resolution axis (then y, so each plane holds it). */
export function sliceAxis(s: Pick<EnhanceSettings, 'task' | 'axis'>): VolumeAxis {
  return s.task === 'sr' && s.axis === 0 ? 1 : 0;
}
