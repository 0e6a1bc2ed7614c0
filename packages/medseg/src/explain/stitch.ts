/**
 * Explanation maps over a whole image: every tile of the sliding window gets
 * its own map, blended with prediction's Gaussian weighting
 * (slidingWindowStitch), so a heat map covers exactly what prediction covers.
 * The target region rides along as an extra channel of the image, so it is
 * padded and cut into tiles exactly like the image.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { slidingWindowStitch } from '../infer/sliding-window.ts';

export interface StitchOptions {
  patchSize: number[];
  stepFraction?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * image [C, ...S], region [...S]; perTile(x [1, C, ...patch], region [...patch])
 * returns a map [...patch] (or [M, ...patch]). Returns the blended map [M, ...S].
 */
export function stitchedMap(image: Tensor, region: Tensor, o: StitchOptions, perTile: (x: Tensor, region: Tensor) => Tensor): Tensor {
  const C = image.size(0);
  return torch.tidy(() => {
    const withRegion = torch.cat([image, region.unsqueeze(0).to(image.dtype)], 0);
    return slidingWindowStitch(withRegion, { patchSize: o.patchSize, stepFraction: o.stepFraction, onProgress: o.onProgress }, (tile) => {
      const map = perTile(tile.narrow(0, 0, C).unsqueeze(0), tile.select(0, C));
      return map.ndim === o.patchSize.length ? map.unsqueeze(0) : map;
    });
  });
}
