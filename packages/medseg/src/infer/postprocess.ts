/**
 * Keep-largest-connected-component per class, applied only when
 * cross-validation shows it helps (decidePostprocessing), as nnU-Net does.
 * Connectivity is face-adjacency (6 in 3D, 4 in 2D), SciPy's default.
 */

/** Labels the connected components of mask (x-fastest [nx, ny, nz]); returns component ids (0 = background) and sizes. */
export function connectedComponents(mask: Uint8Array, size: [number, number, number]): { labels: Int32Array; sizes: number[] } {
  const [nx, ny, nz] = size;
  const labels = new Int32Array(mask.length);
  const sizes = [0];
  const queue = new Int32Array(mask.length);
  const plane = nx * ny;
  let next = 1;
  // The neighbours are visited inline (no closure per voxel): this loop runs once per voxel of every object.
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    labels[start] = next;
    while (head < tail) {
      const i = queue[head++]!;
      const x = i % nx;
      const y = ((i - x) / nx) % ny;
      const z = (i - x - y * nx) / plane;
      if (x > 0) {
        const j = i - 1;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
      if (x < nx - 1) {
        const j = i + 1;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
      if (y > 0) {
        const j = i - nx;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
      if (y < ny - 1) {
        const j = i + nx;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
      if (z > 0) {
        const j = i - plane;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
      if (z < nz - 1) {
        const j = i + plane;
        if (mask[j] && !labels[j]) {
          labels[j] = next;
          queue[tail++] = j;
        }
      }
    }
    sizes.push(tail);
    next++;
  }
  return { labels, sizes };
}

/** Sets every voxel of `cls` outside its largest component to background (0), in place. */
export function keepLargestComponent(labelMap: Uint8Array, size: [number, number, number], cls: number): Uint8Array {
  const mask = new Uint8Array(labelMap.length);
  for (let i = 0; i < labelMap.length; i++) mask[i] = labelMap[i] === cls ? 1 : 0;
  const { labels, sizes } = connectedComponents(mask, size);
  if (sizes.length <= 2) return labelMap;
  let best = 1;
  for (let c = 2; c < sizes.length; c++) if (sizes[c]! > sizes[best]!) best = c;
  for (let i = 0; i < labelMap.length; i++) if (labels[i] && labels[i] !== best) labelMap[i] = 0;
  return labelMap;
}

export function applyPostprocessing(labelMap: Uint8Array, size: [number, number, number], classes: number[]): Uint8Array {
  for (const c of classes) keepLargestComponent(labelMap, size, c);
  return labelMap;
}

/**
 * Chooses the classes for which keep-largest-component raises the mean
 * validation Dice (strictly), from per-case Dice with and without it.
 */
export function decidePostprocessing(perClass: Map<number, { without: number[]; with: number[] }>): number[] {
  const chosen: number[] = [];
  for (const [cls, { without, with: withPP }] of perClass) {
    const mean = (a: number[]) => a.filter(Number.isFinite).reduce((s, v) => s + v, 0) / Math.max(1, a.filter(Number.isFinite).length);
    if (mean(withPP) > mean(without)) chosen.push(cls);
  }
  return chosen;
}
