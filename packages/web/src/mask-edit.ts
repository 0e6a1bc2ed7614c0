/**
 * Mask edits the viewer makes itself on its drawing bitmap (x fastest, then
 * y, then z), pure functions so they can be tested outside a browser:
 * - which slices along an axis a stroke changed, and with which label;
 * - shape-based interpolation of one label between two slices (Raya &
 *   Udupa 1990: the signed Euclidean distance maps of the two slices'
 *   shapes, blended linearly, inside where the blend is below zero); only
 *   that label's voxels and background are written, other labels stay;
 * - a 2D stroke made spherical: on the slices within the brush radius, the
 *   voxels the sphere of each stroke point reaches.
 * NiiVue has its own slice interpolation, but it re-interpolates every label
 * between the first and last slice that has it, which would overwrite a
 * model's mask between two corrected slices; these work on the label the
 * person painted, between the slices they painted.
 */

/** Sizes of the bitmap's axes: x, y, z. */
export type Dims = [number, number, number];
/** The axis slices are taken across: 2 = z (axial), 1 = y (coronal), 0 = x (sagittal). */
export type SliceAxis = 0 | 1 | 2;

const INF = 1e20;

/** Squared distance to the nearest feature along one line (Felzenszwalb & Huttenlocher's lower envelope of parabolas). */
function edt1d(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -INF;
  z[1] = INF;
  for (let q = 1; q < n; q++) {
    let s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    while (s <= z[k]!) {
      k--;
      s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = INF;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    d[q] = (q - v[k]!) ** 2 + f[v[k]!]!;
  }
}

/** Euclidean distance of each pixel of a w x h slice to the nearest pixel where `feature` is true (Infinity when there is none). */
export function distanceTo(feature: (i: number) => boolean, w: number, h: number): Float64Array {
  const n = Math.max(w, h);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  const out = new Float64Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = feature(i) ? 0 : INF;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) f[y] = out[y * w + x]!;
    edt1d(f, h, d, v, z);
    for (let y = 0; y < h; y++) out[y * w + x] = d[y]!;
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) f[x] = out[y * w + x]!;
    edt1d(f, w, d, v, z);
    for (let x = 0; x < w; x++) out[y * w + x] = d[x]! >= INF / 2 ? Infinity : Math.sqrt(d[x]!);
  }
  return out;
}

/** The (width, height) of a slice across `axis`, and the bitmap index of pixel (u, v) of slice s. */
export function sliceGeometry(dims: Dims, axis: SliceAxis): { w: number; h: number; count: number; index: (s: number, u: number, v: number) => number } {
  const [nx, ny, nz] = dims;
  if (axis === 2) return { w: nx, h: ny, count: nz, index: (s, u, v) => u + nx * (v + ny * s) };
  if (axis === 1) return { w: nx, h: nz, count: ny, index: (s, u, v) => u + nx * (s + ny * v) };
  return { w: ny, h: nz, count: nx, index: (s, u, v) => s + nx * (u + ny * v) };
}

/** The slices across `axis` where `before` and `after` differ, with the labels written there (0 for erasing). */
export function changedSlices(before: Uint8Array, after: Uint8Array, dims: Dims, axis: SliceAxis): Map<number, Set<number>> {
  const [nx, ny] = dims;
  const out = new Map<number, Set<number>>();
  for (let i = 0; i < after.length; i++) {
    if (before[i] === after[i]) continue;
    const x = i % nx;
    const y = Math.floor(i / nx) % ny;
    const z = Math.floor(i / (nx * ny));
    const s = axis === 2 ? z : axis === 1 ? y : x;
    let set = out.get(s);
    if (!set) out.set(s, (set = new Set()));
    set.add(after[i]!);
  }
  return out;
}

/** Signed distance of each pixel of slice s to the boundary of `label` there: negative inside; `empty` when the slice has none of it. */
function signedDistance(bitmap: Uint8Array, g: ReturnType<typeof sliceGeometry>, s: number, label: number): Float64Array | null {
  const inside = (i: number) => bitmap[g.index(s, i % g.w, Math.floor(i / g.w))] === label;
  let any = false;
  for (let i = 0; i < g.w * g.h && !any; i++) any = inside(i);
  if (!any) return null;
  const toInside = distanceTo(inside, g.w, g.h);
  const toOutside = distanceTo((i) => !inside(i), g.w, g.h);
  // Half a pixel either side puts the zero level between an inside and an outside pixel.
  return toInside.map((d, i) => (d === 0 ? -(toOutside[i]! - 0.5) : d - 0.5));
}

/**
 * Fills the slices strictly between `a` and `b` (across `axis`) with `label`
 * interpolated from its shapes on slices a and b; returns how many voxels
 * changed. A side without the label counts as a shape shrinking to nothing.
 */
export function interpolateLabel(bitmap: Uint8Array, dims: Dims, axis: SliceAxis, label: number, a: number, b: number): number {
  const g = sliceGeometry(dims, axis);
  const [lo, hi] = a < b ? [a, b] : [b, a];
  if (lo < 0 || hi >= g.count) throw new Error(`slices ${lo} and ${hi} are outside 0..${g.count - 1}`);
  if (hi - lo < 2) return 0;
  const d0 = signedDistance(bitmap, g, lo, label);
  const d1 = signedDistance(bitmap, g, hi, label);
  if (!d0 && !d1) return 0;
  // One side without the label: the shape is eroded in proportion to the distance, to nothing at that side.
  const depth = (d: Float64Array | null) => (d ? d.reduce((m, v) => Math.max(m, -v), 0) + 1e-6 : 0);
  const [depth0, depth1] = [depth(d0), depth(d1)];
  const blend = (p: number, t: number): number => (d0 && d1 ? (1 - t) * d0[p]! + t * d1[p]! : d0 ? d0[p]! + t * depth0 : d1![p]! + (1 - t) * depth1);
  let changed = 0;
  for (let s = lo + 1; s < hi; s++) {
    const t = (s - lo) / (hi - lo);
    for (let v = 0; v < g.h; v++) {
      for (let u = 0; u < g.w; u++) {
        const p = v * g.w + u;
        const d = blend(p, t);
        const i = g.index(s, u, v);
        const was = bitmap[i]!;
        if (was !== 0 && was !== label) continue;
        const now = d < 0 ? label : 0;
        if (now !== was) {
          bitmap[i] = now;
          changed++;
        }
      }
    }
  }
  return changed;
}

/**
 * Makes a stroke painted on slice `s` (the voxels where `before` and `after`
 * differ there, all set to `label`) spherical: on slices s ± k (k <= radius),
 * the stroke's pixels that a ball of that radius around the stroke's centre
 * line reaches. A stroke pixel at depth d (distance to the nearest pixel
 * outside the stroke: 1 on its edge) lies radius + 1 - d from the centre
 * line, and the ball's section k slices away has radius sqrt(radius^2 - k^2).
 * Writes `after`; returns how many voxels changed.
 */
export function extendStroke3d(before: Uint8Array, after: Uint8Array, dims: Dims, axis: SliceAxis, s: number, label: number, radius: number): number {
  const g = sliceGeometry(dims, axis);
  const stroke = (i: number) => {
    const j = g.index(s, i % g.w, Math.floor(i / g.w));
    return after[j] !== before[j] && after[j] === label;
  };
  const depth = distanceTo((i) => !stroke(i), g.w, g.h);
  let changed = 0;
  for (let k = 1; k <= radius; k++) {
    const need = radius + 1 - Math.sqrt(radius * radius - k * k);
    for (const t of [s - k, s + k]) {
      if (t < 0 || t >= g.count) continue;
      for (let p = 0; p < g.w * g.h; p++) {
        if (depth[p]! === 0 || depth[p]! < need - 1e-9) continue;
        const i = g.index(t, p % g.w, Math.floor(p / g.w));
        if (after[i] !== label) {
          after[i] = label;
          changed++;
        }
      }
    }
  }
  return changed;
}
