/**
 * Applies an enhancement model to a volume: normalises it by its
 * 99th-percentile foreground intensity, for super-resolution zooms it along
 * the model's axis by the factor with cubic B-splines (the thick slices become
 * thin ones, the geometry follows: spacing / factor, the origin moved to the
 * first thin slice's centre), then runs the network over the whole volume
 * (2D: plane by plane), whole where it is small enough and otherwise with
 * the Gaussian-weighted sliding window of prediction, and scales the result back to the input's intensities.
 */
import * as torch from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import type { Volume } from '../io/volume.ts';
import { zoomAxis } from '../data/bspline-zoom.ts';
import { normalise, type Shape3 } from '../data/enhance-pairs.ts';
import type { EnhancementModel } from '../models/enhance-model.ts';
import { sliceAxis, type VolumeAxis } from '../plan/enhance-settings.ts';
import { slidingWindowLogits } from './sliding-window.ts';

/** Images up to this many voxels (a plane, or a 3D volume) run through the network whole; larger ones by the sliding window over patches. */
export const WHOLE_IMAGE_VOXELS = 1 << 21;

/** The network on a batch of whole images [N, 1, ...spatial], zero-padded to a multiple of its downsampling and cropped back. */
function wholeImages(model: EnhancementModel, x: torch.Tensor): torch.Tensor {
  return torch.tidy(() => {
    const spatial = x.shape.slice(2);
    const multiple = 2 ** (model.settings.features.length - 1);
    const pad: number[] = [];
    for (let i = spatial.length - 1; i >= 0; i--) pad.push(0, Math.ceil(spatial[i]! / multiple) * multiple - spatial[i]!);
    let out = model.forward(torch.F.pad(x, pad));
    spatial.forEach((n, i) => (out = out.narrow(i + 2, 0, n)));
    return out.contiguous();
  });
}

/** The model's output for a normalised [nz, ny, nx] array (super-resolution: already zoomed); images above `wholeImageVoxels` go by sliding window. */
export function enhanceArray(model: EnhancementModel, data: Float32Array, shape: Shape3, wholeImageVoxels = WHOLE_IMAGE_VOXELS): Float32Array {
  const s = model.settings;
  const pass = { forward: (x: torch.Tensor) => model.forward(x) };
  return torch.noGrad(() =>
    torch.tidy(() => {
      const image = torch.tensor(data, shape);
      if (s.dims === 3) {
        if (data.length <= wholeImageVoxels) return wholeImages(model, image.unsqueeze(0).unsqueeze(0)).toFloat32Array();
        return slidingWindowLogits(pass, image.unsqueeze(0), { patchSize: s.patch }).contiguous().toFloat32Array();
      }
      const order = sliceAxis(s) === 0 ? [0, 1, 2] : [1, 0, 2];
      const planes = image.permute(order).contiguous();
      const [n, rows, cols] = planes.shape as [number, number, number];
      const out: torch.Tensor[] = [];
      if (rows * cols <= wholeImageVoxels) {
        const group = Math.max(1, Math.floor(wholeImageVoxels / (rows * cols)));
        for (let i = 0; i < n; i += group) out.push(wholeImages(model, planes.narrow(0, i, Math.min(group, n - i)).unsqueeze(1)).squeeze(1));
      } else {
        for (let i = 0; i < n; i++) out.push(slidingWindowLogits(pass, planes.select(0, i).unsqueeze(0), { patchSize: s.patch }));
      }
      return torch.cat(out, 0).permute(order).contiguous().toFloat32Array();
    }),
  );
}

/** The geometry of a volume zoomed by `factor` along array axis `axis` with aligned sample edges. */
export function zoomedGeometry(
  v: Pick<Volume, 'size' | 'spacing' | 'origin' | 'direction'>,
  axis: VolumeAxis,
  factor: number,
  newLength: number,
): Pick<Volume, 'size' | 'spacing' | 'origin'> {
  const j = 2 - axis; // volume index of the array axis
  const size = [...v.size] as Volume['size'];
  size[j] = newLength;
  const spacing = [...v.spacing] as Volume['spacing'];
  spacing[j] = v.spacing[j]! / factor;
  // the first new sample sits at old voxel coordinate (0.5 / factor) - 0.5
  const shift = v.spacing[j]! * (0.5 / factor - 0.5);
  const origin = v.origin.map((o, r) => o + v.direction[3 * r + j]! * shift) as Volume['origin'];
  return { size, spacing, origin };
}

/** The enhanced volume, float32, in the input's geometry (super-resolution: refined along the model's axis). */
export function enhanceVolume(model: EnhancementModel, v: Volume): Volume {
  if (v.channels !== 1) throw new MedsegIoError('UNSUPPORTED', `enhancement works on one-channel images, this one has ${v.channels}`, v.meta.sourcePath);
  const s = model.settings;
  const shape: Shape3 = [v.size[2], v.size[1], v.size[0]];
  const { data, scale } = normalise(v.data);
  let input = data;
  let inShape = shape;
  let geometry: Pick<Volume, 'size' | 'spacing' | 'origin'> = v;
  if (s.task === 'sr') {
    const z = zoomAxis(data, shape, s.axis, s.factor);
    input = z.data;
    inShape = z.shape;
    geometry = zoomedGeometry(v, s.axis, s.factor, z.shape[s.axis]);
  }
  const out = enhanceArray(model, input, inShape);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! * scale;
  return { ...v, ...geometry, data: out, channels: 1, direction: [...v.direction], meta: { ...v.meta, extra: undefined } };
}
