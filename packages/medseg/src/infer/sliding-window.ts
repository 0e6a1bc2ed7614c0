/**
 * Sliding-window inference as nnU-Net does it: tiles of the patch size with a
 * step of half a patch, each tile's logits weighted by a Gaussian importance
 * map (sigma = patch / 8, so tile centres count more than their borders),
 * optional mirroring test-time augmentation over the spatial axes (and, beyond
 * nnU-Net, optionally transposing two axes of equal spacing), then the
 * weighted logits normalised by the summed weights.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { Precision } from '../plan/types.ts';
import { tileLayout } from './tile-layout.ts';

export { tileLayout, tileStarts, type TileLayout } from './tile-layout.ts';

/** One network pass: logits [N, K, ...spatial] for a batch of tiles (a libtorch module, or another engine such as onnxruntime). */
export interface NetworkPass {
  forward(x: Tensor): Tensor | Tensor[];
}

export interface SlidingWindowOptions {
  patchSize: number[];
  /** Step between tiles as a fraction of the patch (nnU-Net: 0.5). */
  stepFraction?: number;
  /** Gaussian importance weighting (default on). */
  gaussian?: boolean;
  /** Mirroring TTA over these spatial axes (0-based within the spatial dims); [] or undefined = off. */
  mirrorAxes?: number[];
  /**
   * Mirror each of mirrorAxes alone (the identity and one pass per axis:
   * 1 + d passes) instead of every combination of them (2^d passes).
   */
  mirrorSingleAxes?: boolean;
  /**
   * Also run every mirror with these two spatial axes swapped. With mirroring
   * of both, that is all 8 symmetries of the square (the 4 rotations and 4
   * reflections). Only meaningful where the two axes have the same spacing and
   * training rotated freely in that plane: 2D microscopy and photographs.
   */
  transposeAxes?: [number, number];
  /** Called after every tile with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Mirrored copies of a tile run through the network together, as one batch
   * of at most this many voxels (default 2^20). On CPU a small patch is
   * dominated by per-op overhead, so eight batch-1 forwards cost far more than
   * one batch-8 forward; the cap keeps large 3D patches from multiplying memory.
   */
  maxBatchVoxels?: number;
  /** The network's arithmetic: 'bf16' runs it under CPU autocast (logits come back fp32); default fp32. */
  precision?: Precision;
}

/** What a test-time augmentation level asks for (a plan's inference settings, or a cheaper level's). */
export interface TtaChoice {
  mirror: boolean;
  transpose?: boolean;
  /** Each axis mirrored alone rather than every combination (SlidingWindowOptions.mirrorSingleAxes). */
  mirrorSingleAxes?: boolean;
}

/** The TTA options for a number of spatial axes: mirror all of them; transpose the two of a plane (2D only). */
export function ttaOptions(tta: TtaChoice, spatialDims: number): Pick<SlidingWindowOptions, 'mirrorAxes' | 'mirrorSingleAxes' | 'transposeAxes'> {
  return {
    mirrorAxes: tta.mirror ? Array.from({ length: spatialDims }, (_, i) => i) : [],
    mirrorSingleAxes: tta.mirror && tta.mirrorSingleAxes === true,
    transposeAxes: tta.transpose && spatialDims === 2 ? [0, 1] : undefined,
  };
}

/** Network passes per tile of these TTA options: the mirror combinations, twice with transposition. */
export function ttaPasses(o: Pick<SlidingWindowOptions, 'mirrorAxes' | 'mirrorSingleAxes' | 'transposeAxes'>): number {
  return mirrorCombos(o.mirrorAxes ?? [], o.mirrorSingleAxes).length * (o.transposeAxes ? 2 : 1);
}

/** The Gaussian importance map for a patch, max 1, no zeros. */
export function gaussianImportance(patch: number[], sigmaScale = 1 / 8): Tensor {
  return torch.tidy(() => {
    let map: Tensor | null = null;
    patch.forEach((p, axis) => {
      const c = (p - 1) / 2;
      const sigma = p * sigmaScale;
      const coords = torch.arange(0, p, 1, { dtype: 'float32' });
      const g = coords
        .sub(c)
        .pow(2)
        .div(-2 * sigma * sigma)
        .exp();
      const shape = patch.map((_, i) => (i === axis ? p : 1));
      const gs = g.reshape(shape);
      map = map ? map.mul(gs) : gs;
    });
    const m = map!.div(map!.max());
    // Zeros would make the normalisation divide by zero where only borders overlap.
    const minPositive = m.maskedSelect(m.gt(0)).min().item();
    return m.clamp(minPositive, null);
  });
}

/**
 * The sets of axes each mirrored pass flips, the identity first: every
 * combination of the axes, or (singleAxes) each axis alone.
 */
export function mirrorCombos(axes: readonly number[], singleAxes = false): number[][] {
  if (singleAxes) return [[], ...axes.map((a) => [a])];
  const combos: number[][] = [[]];
  for (const a of axes) for (const c of [...combos]) combos.push([...c, a]);
  return combos;
}

function forwardLogits(net: NetworkPass, x: Tensor, precision: Precision | undefined): Tensor {
  const out = precision === 'bf16' ? torch.autocast({ dtype: 'bfloat16' }, () => net.forward(x)) : net.forward(x);
  const logits = Array.isArray(out) ? out[0]! : out;
  return logits.dtype === 'float32' ? logits : logits.float();
}

/**
 * The sliding-window skeleton: pads image [C, ...spatial] as tileLayout says,
 * calls `perTile` with every tile [C, ...patch] and its start (on the padded
 * grid), and blends the returned maps [K, ...patch] with the Gaussian
 * importance weighting (or uniform weights), normalised by the summed weights,
 * cropped back to [K, ...spatial]. Prediction and the explanation maps
 * (explain/) share it, so a heat map is stitched exactly like the logits.
 * Gradient mode is the caller's: perTile may run backward passes.
 */
export function slidingWindowStitch(
  image: Tensor,
  o: Pick<SlidingWindowOptions, 'patchSize' | 'stepFraction' | 'gaussian' | 'onProgress'>,
  perTile: (tile: Tensor, start: number[]) => Tensor,
): Tensor {
  const spatial = image.shape.slice(1);
  const patch = o.patchSize;
  const { padded, before, tiles } = tileLayout(spatial, patch, o.stepFraction ?? 0.5);
  return torch.tidy(() => {
    let x = image;
    if (padded.some((p, i) => p !== spatial[i])) {
      const pad: number[] = [];
      for (let i = spatial.length - 1; i >= 0; i--) pad.push(before[i]!, padded[i]! - spatial[i]! - before[i]!);
      x = torch.F.pad(image.unsqueeze(0), pad).squeeze(0);
    }
    const weight = o.gaussian === false ? torch.ones(patch) : gaussianImportance(patch);
    let acc: Tensor | null = null;
    const norm = torch.zeros(padded);
    tiles.forEach((start, ti) => {
      torch.tidy(() => {
        let tile = x;
        start.forEach((s, axis) => (tile = tile.narrow(axis + 1, s, patch[axis]!)));
        const map = perTile(tile, start);
        if (map.ndim !== patch.length + 1 || map.shape.slice(1).join(',') !== patch.join(',')) {
          throw new Error(`sliding window: a tile's map must be [K, ${patch}], got [${map.shape}]`);
        }
        if (!acc) acc = torch.keep(torch.zeros([map.size(0), ...padded]));
        let accView = acc;
        let normView = norm;
        start.forEach((s, axis) => {
          accView = accView.narrow(axis + 1, s, patch[axis]!);
          normView = normView.narrow(axis, s, patch[axis]!);
        });
        accView.add_(map.mul(weight));
        normView.add_(weight);
      });
      o.onProgress?.(ti + 1, tiles.length);
    });
    const out = torch.unkeep(acc!).div(norm);
    // Undo the padding.
    let cropped = out;
    spatial.forEach((s, axis) => (cropped = cropped.narrow(axis + 1, before[axis]!, s)));
    return cropped.contiguous();
  });
}

/**
 * image: [C, ...spatial] (2D or 3D). Returns logits [K, ...spatial] averaged
 * over tiles (and mirrors, and transposes). The network must be in eval mode; gradients are off.
 */
export function slidingWindowLogits(net: NetworkPass, image: Tensor, o: SlidingWindowOptions): Tensor {
  const patch = o.patchSize;
  const combos = mirrorCombos(o.mirrorAxes ?? [], o.mirrorSingleAxes);
  const patchVoxels = patch.reduce((a, b) => a * b, 1);
  const group = Math.max(1, Math.min(combos.length, Math.floor((o.maxBatchVoxels ?? 2 ** 20) / patchVoxels)));
  const ta = o.transposeAxes;
  return torch.noGrad(() =>
    slidingWindowStitch(image, o, (tile) => {
      let sum: Tensor | null = null;
      // A transposed tile has another shape (unless square), so it is batched apart.
      for (const swap of ta ? [false, true] : [false]) {
        const view = swap ? tile.transpose(ta![0] + 1, ta![1] + 1) : tile;
        for (let g = 0; g < combos.length; g += group) {
          const members = combos.slice(g, g + group);
          // Flips of the [C, ...spatial] tile, so spatial axis a is dim a + 1.
          const inputs = members.map((combo) => (combo.length ? view.flip(combo.map((a) => a + 1)) : view));
          const logits = forwardLogits(net, torch.stack(inputs, 0), o.precision);
          members.forEach((combo, i) => {
            const l = logits.select(0, i);
            const unflipped = combo.length ? l.flip(combo.map((a) => a + 1)) : l;
            const back = swap ? unflipped.transpose(ta![0] + 1, ta![1] + 1) : unflipped;
            sum = sum ? sum.add(back) : back;
          });
        }
      }
      return sum!.div(combos.length * (ta ? 2 : 1));
    }),
  );
}

/** Softmax probabilities [K, ...spatial] from sliding-window logits. */
export function slidingWindowProbabilities(net: NetworkPass, image: Tensor, o: SlidingWindowOptions): Tensor {
  return torch.tidy(() => torch.F.softmax(slidingWindowLogits(net, image, o), 0));
}
