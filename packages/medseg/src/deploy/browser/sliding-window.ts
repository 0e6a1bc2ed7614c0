/**
 * The sliding window of prediction (infer/sliding-window.ts) on plain arrays,
 * for a web page: the same tile layout (infer/tile-layout.ts), the same
 * Gaussian importance map (sigma = patch / 8, max 1, no zeros), mirroring TTA
 * over the model's mirror axes, the weighted logits divided by the summed
 * weights. Each tile runs through onnxruntime-web as one batch-1 pass, so a
 * caller can report progress and stop between tiles.
 */
import { tileLayout } from '../../infer/tile-layout.ts';
import { runPatch, WebModelError, type WebModel } from './web-model.ts';

/** The run was stopped through its AbortSignal. */
export class WebInferenceCancelled extends Error {
  constructor() {
    super('inference cancelled');
    this.name = 'AbortError';
  }
}

/** The Gaussian importance map of a patch (last axis fastest): max 1, zeros raised to the smallest positive weight. */
export function gaussianWeights(patch: number[], sigmaScale = 1 / 8): Float32Array {
  const axes = patch.map((p) => {
    const c = (p - 1) / 2;
    const sigma = p * sigmaScale;
    return Float64Array.from({ length: p }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
  });
  const n = patch.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let v = 1;
    for (let a = patch.length - 1; a >= 0; a--) {
      v *= axes[a]![rest % patch[a]!]!;
      rest = Math.floor(rest / patch[a]!);
    }
    out[i] = v;
  }
  let max = 0;
  for (const v of out) if (v > max) max = v;
  let minPositive = Infinity;
  for (let i = 0; i < n; i++) {
    out[i] = out[i]! / max;
    if (out[i]! > 0 && out[i]! < minPositive) minPositive = out[i]!;
  }
  for (let i = 0; i < n; i++) if (out[i]! < minPositive) out[i] = minPositive;
  return out;
}

/** Every subset of the mirror axes, the empty one first (the order of the libtorch window). */
export function mirrorCombos(axes: number[]): number[][] {
  const combos: number[][] = [[]];
  for (const a of axes) for (const c of [...combos]) combos.push([...c, a]);
  return combos;
}

type Shape3 = [number, number, number];

/**
 * Lets the event loop run its queued tasks (a worker's incoming messages): a
 * wasm session's run settles through microtasks only, so a loop of runs never
 * reaches the message that cancels it without this. A MessageChannel task
 * is not clamped to 4 ms as a nested setTimeout is.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    // Typed by what is used here: the same in a browser and in Node (whose port types lack onmessage).
    const channel = new MessageChannel() as unknown as { port1: { onmessage: (() => void) | null; close(): void }; port2: { postMessage(m: null): void } };
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Reverses [C, Z, Y, X] data along the given axes of [Z, Y, X] (0 = z); a flip twice is the identity. */
export function flipAxes(data: Float32Array, channels: number, shape: Shape3, axes: number[]): Float32Array {
  if (axes.length === 0) return data;
  const [Z, Y, X] = shape;
  const [fz, fy, fx] = [0, 1, 2].map((a) => axes.includes(a));
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++)
    for (let z = 0; z < Z; z++)
      for (let y = 0; y < Y; y++) {
        const src = ((c * Z + (fz ? Z - 1 - z : z)) * Y + (fy ? Y - 1 - y : y)) * X;
        const dst = ((c * Z + z) * Y + y) * X;
        for (let x = 0; x < X; x++) out[dst + x] = data[src + (fx ? X - 1 - x : x)]!;
      }
  return out;
}

/** Swaps the y and x axes of [C, Z, Y, X] data: the result is [C, Z, X, Y]. */
export function transposePlane(data: Float32Array, channels: number, shape: Shape3): Float32Array {
  const [Z, Y, X] = shape;
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++)
    for (let z = 0; z < Z; z++) {
      const base = (c * Z + z) * Y * X;
      for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) out[base + x * Y + y] = data[base + y * X + x]!;
    }
  return out;
}

/** The rows (z, y) of a patch placed at origin (oz, oy, ox) that lie on the image, with their image row and the patch's x range [x0, x1) on the image. */
function insideRows(
  patch: Shape3,
  shape: Shape3,
  oz: number,
  oy: number,
  ox: number,
): { z: number; y: number; iz: number; iy: number; x0: number; x1: number }[] {
  const [PZ, PY, PX] = patch;
  const [Z, Y, X] = shape;
  const x0 = Math.max(0, -ox);
  const x1 = Math.min(PX, X - ox);
  const rows: { z: number; y: number; iz: number; iy: number; x0: number; x1: number }[] = [];
  for (let z = 0; z < PZ; z++)
    for (let y = 0; y < PY; y++) {
      const iz = oz + z;
      const iy = oy + y;
      if (iz >= 0 && iz < Z && iy >= 0 && iy < Y) rows.push({ z, y, iz, iy, x0, x1 });
    }
  return rows;
}

export interface WebWindowOptions {
  /** The model's patch, [z, y, x] (3D) or [y, x] (2D). */
  patchSize: number[];
  stepFraction?: number;
  /** Mirroring TTA over these axes of the patch (0 = its first axis); [] = off. */
  mirrorAxes?: number[];
  /** 2D models: [0, 1] also runs every mirror of the tile with its two axes swapped; [] = off. */
  transposeAxes?: number[];
  /** Called after every tile with (done, total). */
  onTile?: (done: number, total: number) => void;
  /** Checked before every tile (after letting queued tasks run); an aborted signal stops the run with WebInferenceCancelled. */
  signal?: AbortSignal;
}

/**
 * image: preprocessed [C, ...spatial] with spatial [Z, Y, X] (3D models) or
 * [Y, X] (2D models). Returns the logits [K, ...spatial], as
 * slidingWindowLogits does on libtorch.
 */
export async function slidingWindowLogitsWeb(
  model: WebModel,
  image: Float32Array,
  spatial: number[],
  o: WebWindowOptions,
): Promise<{ logits: Float32Array; classes: number; tiles: number }> {
  const nd = o.patchSize.length;
  if (spatial.length !== nd) throw new WebModelError(`the model's patch [${o.patchSize}] has ${nd} axes; the image [${spatial}] has ${spatial.length}`);
  const channels = model.info.channels.length;
  const lift = 3 - nd;
  // 2D runs as 3D with one slice: a Gaussian over a length-1 axis is 1, so the weights are the 2D ones.
  const shape = [...Array<number>(lift).fill(1), ...spatial] as Shape3;
  const patch = [...Array<number>(lift).fill(1), ...o.patchSize] as Shape3;
  const [Z, Y, X] = shape;
  const [PZ, PY, PX] = patch;
  const voxels = Z * Y * X;
  const patchVoxels = PZ * PY * PX;
  if (image.length !== channels * voxels) throw new WebModelError(`${image.length} values are not ${channels} channel(s) × [${spatial}]`);
  const layout = tileLayout(spatial, o.patchSize, o.stepFraction ?? 0.5);
  const before = [...Array<number>(lift).fill(0), ...layout.before];
  const weights = gaussianWeights(patch);
  const combos = mirrorCombos((o.mirrorAxes ?? []).map((a) => a + lift));
  const inputShape = [1, channels, ...o.patchSize];
  const transpose = (o.transposeAxes ?? []).length > 0;
  if (transpose && (nd !== 2 || o.transposeAxes!.join() !== '0,1')) {
    throw new WebModelError(`transposing TTA swaps the two axes of a 2D patch; got axes [${o.transposeAxes}] of a ${nd}D patch`);
  }
  const transposedShape = [1, channels, PX, PY];
  let acc: Float32Array | null = null;
  let classes = 0;
  const norm = new Float32Array(voxels);
  const total = layout.tiles.length;
  for (let t = 0; t < total; t++) {
    if (o.signal) await yieldToEventLoop();
    if (o.signal?.aborted) throw new WebInferenceCancelled();
    const start = [...Array<number>(lift).fill(0), ...layout.tiles[t]!];
    // The tile's origin on the image grid (negative where the image is padded).
    const [oz, oy, ox] = start.map((s, a) => s - before[a]!) as Shape3;
    const tile = new Float32Array(channels * patchVoxels);
    const rows = insideRows(patch, shape, oz, oy, ox);
    for (let c = 0; c < channels; c++)
      for (const { z, y, iz, iy, x0, x1 } of rows) {
        const src = ((c * Z + iz) * Y + iy) * X + ox;
        tile.set(image.subarray(src + x0, src + x1), ((c * PZ + z) * PY + y) * PX + x0);
      }
    let sum: Float32Array | null = null;
    // As the libtorch window: a transposed tile is its own view, mirrored like the tile itself, and swapped back after.
    for (const swap of transpose ? [false, true] : [false]) {
      const view = swap ? transposePlane(tile, channels, patch) : tile;
      const viewShape: Shape3 = swap ? [PZ, PX, PY] : patch;
      for (const combo of combos) {
        const { logits, dims } = await runPatch(model, flipAxes(view, channels, viewShape, combo), swap ? transposedShape : inputShape);
        classes = dims[1]!;
        let back = flipAxes(logits, classes, viewShape, combo);
        if (swap) back = transposePlane(back, classes, viewShape);
        if (!sum) sum = back === logits ? Float32Array.from(logits) : back;
        else for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + back[i]!;
      }
    }
    acc ??= new Float32Array(classes * voxels);
    const scale = combos.length * (transpose ? 2 : 1);
    for (const { z, y, iz, iy, x0, x1 } of rows) {
      for (let x = x0; x < x1; x++) {
        const p = (z * PY + y) * PX + x;
        const v = (iz * Y + iy) * X + ox + x;
        const w = weights[p]!;
        for (let k = 0; k < classes; k++) acc[k * voxels + v] = acc[k * voxels + v]! + Math.fround(sum![k * patchVoxels + p]! / scale) * w;
        norm[v] = norm[v]! + w;
      }
    }
    o.onTile?.(t + 1, total);
  }
  const logits = acc!;
  for (let k = 0; k < classes; k++) for (let v = 0; v < voxels; v++) logits[k * voxels + v] = logits[k * voxels + v]! / norm[v]!;
  return { logits, classes, tiles: total };
}
