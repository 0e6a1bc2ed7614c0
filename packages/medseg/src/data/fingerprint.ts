/**
 * The dataset fingerprint (nnU-Net's dataset_fingerprint.json): per case
 * spacing, shape and shape after cropping to nonzero; per channel the
 * intensity statistics of voxels sampled inside the label foreground
 * (nnU-Net samples up to 10^7 / n_cases foreground voxels per case and
 * reports mean, median, std, min, max, percentile_00_5, percentile_99_5 over
 * all of them); class voxel frequencies.
 */
import { readFileSync } from 'node:fs';
import { MedsegIoError } from '../io/errors.ts';
import type { Dataset } from './dataset.ts';
import type { Zyx } from './axes.ts';
import { boxShape, loadRawCase, nonzeroBox } from './case.ts';
import { foregroundSize, type ForegroundSize } from './object-size.ts';
import { Rng } from '../util/random.ts';
import { median, percentileSorted } from '../util/quantile.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';

export interface IntensityStats {
  mean: number;
  median: number;
  std: number;
  min: number;
  max: number;
  percentile_00_5: number;
  percentile_99_5: number;
}

export interface CaseFingerprint {
  id: string;
  spacing: Zyx;
  shape: Zyx;
  croppedShape: Zyx;
  /** 2D cases with a label: how large and thick the foreground is (data/object-size.ts); absent in older fingerprints. */
  foreground?: ForegroundSize | null;
}

export interface Fingerprint {
  schema: 'medseg.fingerprint/1';
  name: string;
  channels: string[];
  labels: Record<number, string>;
  /** 2 when every case is a single slice (Z = 1). */
  dims: 2 | 3;
  cases: CaseFingerprint[];
  /** Per channel, over foreground voxels of all cases. */
  intensity: IntensityStats[];
  /** Fraction of all labelled voxels per class id. */
  classFrequencies: Record<number, number>;
  /** Median over cases of cropped voxels / original voxels. */
  medianRelativeSizeAfterCropping: number;
}

export function intensityStats(samples: Float32Array | Float64Array): IntensityStats {
  const n = samples.length;
  if (n === 0) return { mean: NaN, median: NaN, std: NaN, min: NaN, max: NaN, percentile_00_5: NaN, percentile_99_5: NaN };
  const s = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (s[i]! - mean) ** 2;
  return {
    mean,
    median: percentileSorted(s, 50),
    std: Math.sqrt(ss / n), // numpy's np.std (ddof 0), as nnU-Net
    min: s[0]!,
    max: s[n - 1]!,
    percentile_00_5: percentileSorted(s, 0.5),
    percentile_99_5: percentileSorted(s, 99.5),
  };
}

export interface FingerprintOptions {
  /** Total foreground samples over the dataset (nnU-Net: 10^7); split evenly over cases. */
  totalSamples?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function computeFingerprint(ds: Dataset, o: FingerprintOptions = {}): Promise<Fingerprint> {
  const cases = ds.training;
  const perCase = Math.max(1, Math.floor((o.totalSamples ?? 1e7) / Math.max(1, cases.length)));
  const rng = new Rng(o.seed ?? 1234);
  const C = ds.channels.length;
  const samples: number[][] = Array.from({ length: C }, () => []);
  const counts = new Map<number, number>();
  let labelled = 0;
  const out: CaseFingerprint[] = [];
  const relSizes: number[] = [];
  for (let k = 0; k < cases.length; k++) {
    const rc = await loadRawCase(cases[k]!);
    if (rc.channels !== C) throw new MedsegIoError('BAD_DATA', `has ${rc.channels} channels, dataset.json names ${C}`, cases[k]!.imagePaths[0]);
    const box = nonzeroBox(rc.image, rc.channels, rc.shape);
    const croppedShape = boxShape(box);
    const foreground = rc.label && rc.shape[0] === 1 ? { foreground: foregroundSize(rc.label, rc.shape) } : {};
    out.push({ id: rc.id, spacing: rc.spacing, shape: rc.shape, croppedShape, ...foreground });
    relSizes.push((croppedShape[0] * croppedShape[1] * croppedShape[2]) / (rc.shape[0] * rc.shape[1] * rc.shape[2]));
    if (rc.label) {
      const n = rc.label.length;
      const fg: number[] = [];
      for (let i = 0; i < n; i++) {
        const l = rc.label[i]!;
        counts.set(l, (counts.get(l) ?? 0) + 1);
        if (l > 0) fg.push(i);
      }
      labelled += n;
      if (fg.length > 0) {
        // Sampled with replacement, as nnU-Net (rs.choice(..., replace=True)).
        for (let s = 0; s < perCase; s++) {
          const i = fg[rng.int(fg.length)]!;
          for (let c = 0; c < C; c++) samples[c]!.push(rc.image[c * n + i]!);
        }
      }
    }
    o.onProgress?.(k + 1, cases.length);
  }
  const classFrequencies: Record<number, number> = {};
  for (const id of Object.keys(ds.labels).map(Number)) classFrequencies[id] = labelled ? (counts.get(id) ?? 0) / labelled : 0;
  const dims = out.every((c) => c.shape[0] === 1) ? 2 : 3;
  return {
    schema: 'medseg.fingerprint/1',
    name: ds.name,
    channels: ds.channels,
    labels: ds.labels,
    dims,
    cases: out,
    intensity: samples.map((s) => intensityStats(Float64Array.from(s))),
    classFrequencies,
    medianRelativeSizeAfterCropping: median(relSizes),
  };
}

export async function saveFingerprint(path: string, fp: Fingerprint): Promise<void> {
  await writeJsonAtomic(path, fp);
}

export function loadFingerprint(path: string): Fingerprint {
  let fp: Fingerprint;
  try {
    fp = JSON.parse(readFileSync(path, 'utf8')) as Fingerprint;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `not a readable fingerprint JSON (${(e as Error).message})`, path);
  }
  if (fp?.schema !== 'medseg.fingerprint/1' || !Array.isArray(fp.cases) || !Array.isArray(fp.channels)) {
    throw new MedsegIoError('BAD_DATA', 'not a medseg fingerprint (schema medseg.fingerprint/1 with cases and channels)', path);
  }
  return fp;
}
