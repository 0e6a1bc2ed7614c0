/**
 * One training batch from preprocessed cases: random cases, patches with
 * foreground oversampling, augmentation (a transposed 2D patch is cut with
 * the patch's axes swapped, then transposed, so it need not be square). A
 * pure function of (cases, plan, seed), so the loader's workers produce the
 * same sequence however many there are. With `skeletonClasses` the batch
 * also carries the skeleton-recall targets of its labels (skeleton.ts), made
 * here in the worker rather than on the training step's critical path.
 */
import { augmentSample } from './augment.ts';
import type { Plan } from '../plan/types.ts';
import { Rng } from '../util/random.ts';
import { samplePatch } from './sampler.ts';
import { tubedSkeletons } from './skeleton.ts';
import type { PreprocessedCase } from './types.ts';

export interface Batch {
  /** [B, C, ...patch] */
  image: Float32Array;
  /** [B, ...patch] */
  label: Uint8Array;
  shape: number[];
  caseIds: string[];
  forcedForeground: number;
  /** [B, K, ...patch] one-hot tubed skeletons of the labels (2D, when asked for). */
  skeleton?: Uint8Array;
}

export interface BatchOptions {
  /** Also make the skeleton-recall targets, one-hot over this many classes (2D patches only). */
  skeletonClasses?: number;
}

/** [C, rows, cols] -> [C, cols, rows]. */
export function transposePlanes<T extends Float32Array | Uint8Array>(a: T, channels: number, rows: number, cols: number): T {
  const out = new (a.constructor as { new (n: number): T })(a.length);
  const n = rows * cols;
  for (let c = 0; c < channels; c++) {
    const o = c * n;
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) out[o + x * rows + y] = a[o + y * cols + x]!;
  }
  return out;
}

export function makeBatch(
  cases: PreprocessedCase[],
  plan: Pick<Plan, 'patchSize' | 'batchSize' | 'augmentation' | 'oversampleForeground'>,
  seed: number,
  augment = true,
  o: BatchOptions = {},
): Batch {
  const rng = new Rng(seed);
  const B = plan.batchSize;
  const patch = plan.patchSize;
  const pn = patch.reduce((a, b) => a * b, 1);
  const C = cases[0]!.channels;
  const image = new Float32Array(B * C * pn);
  const label = new Uint8Array(B * pn);
  const ids: string[] = [];
  let forced = 0;
  const pT = plan.augmentation.transpose?.p ?? 0;
  for (let b = 0; b < B; b++) {
    const c = cases[rng.int(cases.length)]!;
    ids.push(c.id);
    // Drawn only when enabled, so plans without it keep their batch sequence.
    const swap = augment && patch.length === 2 && pT > 0 && rng.chance(pT);
    const p = samplePatch(c, swap ? [patch[1]!, patch[0]!] : patch, plan.oversampleForeground, rng);
    if (swap) {
      p.image = transposePlanes(p.image, C, patch[1]!, patch[0]!);
      p.label = transposePlanes(p.label, 1, patch[1]!, patch[0]!);
    }
    if (p.forcedForeground) forced++;
    const s = augment
      ? augmentSample({ image: p.image, label: p.label, channels: C, shape: patch }, plan.augmentation, rng)
      : { image: p.image, label: p.label };
    image.set(s.image, b * C * pn);
    label.set(s.label!, b * pn);
  }
  const batch: Batch = { image, label, shape: [B, C, ...patch], caseIds: ids, forcedForeground: forced };
  if (o.skeletonClasses) {
    if (patch.length !== 2) throw new Error(`skeleton-recall targets are 2D, the patch is ${patch.length}D`);
    batch.skeleton = tubedSkeletons(label, [B, patch[0]!, patch[1]!], o.skeletonClasses);
  }
  return batch;
}
