/**
 * Objects from a semantic prediction: connected components of a class, and,
 * for touching objects (cells in EM or histology), a marker-controlled
 * watershed that floods from confident seeds over an elevation map (a
 * boundary probability) so that objects meet on their boundaries instead of
 * merging. Arrays are x-fastest over [nx, ny, nz]; connectivity is
 * face-adjacency (4 in 2D, 6 in 3D), SciPy's and scikit-image's default.
 */
import { connectedComponents } from './postprocess.ts';

type Size = [number, number, number];

/** Instance map of one class: its connected components, numbered 1..N in scan order. */
export function instancesOfClass(labels: ArrayLike<number>, size: Size, cls: number): Int32Array {
  const mask = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) mask[i] = labels[i] === cls ? 1 : 0;
  return connectedComponents(mask, size).labels;
}

/**
 * A binary min-heap of voxel indices ordered by (elevation, insertion order):
 * equal elevations flood first-in first-out. Each voxel enters at most once,
 * so its key and insertion order are kept per voxel and the heap moves only
 * indices, sifting a hole instead of swapping.
 */
class FloodQueue {
  private heap: Int32Array;
  private key: Float64Array;
  private age: Int32Array;
  size = 0;
  private counter = 0;
  constructor(voxels: number) {
    this.heap = new Int32Array(voxels);
    this.key = new Float64Array(voxels);
    this.age = new Int32Array(voxels);
  }
  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && this.age[a]! < this.age[b]!);
  }
  push(voxel: number, k: number): void {
    this.key[voxel] = k;
    this.age[voxel] = this.counter++;
    let n = this.size++;
    while (n > 0) {
      const parent = (n - 1) >> 1;
      const p = this.heap[parent]!;
      if (!this.less(voxel, p)) break;
      this.heap[n] = p;
      n = parent;
    }
    this.heap[n] = voxel;
  }
  pop(): number {
    const top = this.heap[0]!;
    const last = this.heap[--this.size]!;
    if (this.size > 0) {
      let n = 0;
      for (;;) {
        const l = 2 * n + 1;
        if (l >= this.size) break;
        const r = l + 1;
        const child = r < this.size && this.less(this.heap[r]!, this.heap[l]!) ? r : l;
        if (!this.less(this.heap[child]!, last)) break;
        this.heap[n] = this.heap[child]!;
        n = child;
      }
      this.heap[n] = last;
    }
    return top;
  }
}

/**
 * Marker-controlled watershed: every voxel inside `mask` (all when absent)
 * that is reachable from a marker (> 0) takes the label of the marker whose
 * flood reaches it first, lowest elevation first. Voxels outside the mask,
 * or not reachable, stay 0.
 */
export function watershed(elevation: ArrayLike<number>, markers: ArrayLike<number>, size: Size, mask?: ArrayLike<number>): Int32Array {
  const [nx, ny, nz] = size;
  const n = nx * ny * nz;
  if (elevation.length !== n || markers.length !== n || (mask && mask.length !== n)) throw new Error(`watershed: arrays must have ${n} voxels`);
  const out = new Int32Array(n);
  const queued = new Uint8Array(n);
  const queue = new FloodQueue(n);
  for (let i = 0; i < n; i++) {
    if (markers[i]! > 0 && (!mask || mask[i])) {
      out[i] = markers[i]!;
      queued[i] = 1;
      queue.push(i, elevation[i]!);
    }
  }
  // One visitor for the whole flood (not a closure made per voxel): it gives the neighbour the current voxel's label.
  let label = 0;
  const visit = (j: number) => {
    if (queued[j] || (mask && !mask[j])) return;
    queued[j] = 1;
    out[j] = label;
    queue.push(j, elevation[j]!);
  };
  const plane = nx * ny;
  while (queue.size > 0) {
    const i = queue.pop();
    label = out[i]!;
    const x = i % nx;
    const y = ((i - x) / nx) % ny;
    const z = (i - x - y * nx) / plane;
    if (z > 0) visit(i - nx * ny);
    if (y > 0) visit(i - nx);
    if (x > 0) visit(i - 1);
    if (x < nx - 1) visit(i + 1);
    if (y < ny - 1) visit(i + nx);
    if (z < nz - 1) visit(i + nx * ny);
  }
  return out;
}

/**
 * Cells separated by their boundaries: seeds are the connected components
 * of voxels whose boundary probability is at most `seedBelow` (default
 * 0.1), grown by watershed over the boundary probability into every voxel
 * (or only those below `maskBelow`, leaving boundaries as 0). With a mask, a
 * region of it that holds no seed is still a cell (numbered after the
 * flooded ones, in scan order): a less confident model must not lose the
 * cells it is unsure of, only fail to split them.
 */
export function cellsFromBoundaries(boundary: ArrayLike<number>, size: Size, o: { seedBelow?: number; maskBelow?: number } = {}): Int32Array {
  const seedBelow = o.seedBelow ?? 0.1;
  const seeds = new Uint8Array(boundary.length);
  for (let i = 0; i < boundary.length; i++) seeds[i] = boundary[i]! <= seedBelow ? 1 : 0;
  const markers = connectedComponents(seeds, size).labels;
  let mask: Uint8Array | undefined;
  if (o.maskBelow !== undefined) {
    mask = new Uint8Array(boundary.length);
    for (let i = 0; i < boundary.length; i++) mask[i] = boundary[i]! < o.maskBelow ? 1 : 0;
  }
  const cells = watershed(boundary, markers, size, mask);
  if (!mask) return cells;
  const unreached = new Uint8Array(cells.length);
  let flooded = 0;
  for (let i = 0; i < cells.length; i++) {
    unreached[i] = mask[i] && !cells[i] ? 1 : 0;
    if (cells[i]! > flooded) flooded = cells[i]!;
  }
  const rest = connectedComponents(unreached, size).labels;
  for (let i = 0; i < cells.length; i++) if (rest[i]) cells[i] = flooded + rest[i]!;
  return cells;
}
