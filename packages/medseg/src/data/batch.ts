/**
 * One training batch from preprocessed cases: random cases, patches with
 * foreground oversampling, augmentation. A pure function of (cases, plan,
 * seed), so the loader's workers produce the same sequence however many
 * there are.
 */
import { augmentSample } from './augment.ts';
import type { Plan } from './plan.ts';
import { Rng } from './rng.ts';
import { samplePatch } from './sampler.ts';
import type { PreprocessedCase } from './types.ts';

export interface Batch {
  /** [B, C, ...patch] */
  image: Float32Array;
  /** [B, ...patch] */
  label: Uint8Array;
  shape: number[];
  caseIds: string[];
  forcedForeground: number;
}

export function makeBatch(cases: PreprocessedCase[], plan: Pick<Plan, 'patchSize' | 'batchSize' | 'augmentation' | 'oversampleForeground'>, seed: number, augment = true): Batch {
  const rng = new Rng(seed);
  const B = plan.batchSize;
  const patch = plan.patchSize;
  const pn = patch.reduce((a, b) => a * b, 1);
  const C = cases[0]!.channels;
  const image = new Float32Array(B * C * pn);
  const label = new Uint8Array(B * pn);
  const ids: string[] = [];
  let forced = 0;
  for (let b = 0; b < B; b++) {
    const c = cases[rng.int(cases.length)]!;
    ids.push(c.id);
    const p = samplePatch(c, patch, plan.oversampleForeground, rng);
    if (p.forcedForeground) forced++;
    const s = augment ? augmentSample({ image: p.image, label: p.label, channels: C, shape: patch }, plan.augmentation, rng) : { image: p.image, label: p.label };
    image.set(s.image, b * C * pn);
    label.set(s.label!, b * pn);
  }
  return { image, label, shape: [B, C, ...patch], caseIds: ids, forcedForeground: forced };
}
