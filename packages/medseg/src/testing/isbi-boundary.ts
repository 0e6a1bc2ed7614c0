/**
 * A real ISBI 2012 EM membrane mask and a soft boundary map made from it (the
 * membrane mask averaged over 5x5, on a grid of 1/25 steps, so ties are
 * common as in real probability maps): the input of the instance tests.
 */
import { readFileSync } from 'node:fs';
import { decodeImage2d } from '../io/image2d.ts';
import { dataPath } from './data.ts';

export function isbiBoundaryMap(slice = 0): { w: number; h: number; mask: number[]; elevation: Float64Array } {
  const m = decodeImage2d(readFileSync(dataPath('isbi2012-em', 'masks', `${slice}.png`)), { path: 'mask' });
  const [w, h] = [m.size[0], m.size[1]];
  const mask = Array.from(m.data as ArrayLike<number>);
  const mem = Float64Array.from(mask, (v) => (v < 128 ? 1 : 0));
  const elevation = new Float64Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      let c = 0;
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
            s += mem[yy * w + xx]!;
            c++;
          }
        }
      elevation[y * w + x] = Math.round((s / c) * 1e6) / 1e6;
    }
  return { w, h, mask, elevation };
}
