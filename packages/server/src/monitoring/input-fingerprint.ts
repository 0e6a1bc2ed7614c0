/**
 * What the service notes about each case it segments, to compare with what
 * the model was trained on: spacing and shape ([z, y, x], as the dataset
 * fingerprint keeps them), per channel the intensity statistics of the
 * predicted foreground (the dataset fingerprint's statistics are of the
 * labelled foreground; with too little predicted foreground, of the whole
 * image), the modality tags, and the prediction's uncertainty score.
 *
 * The score is the one the model's triage rule thresholds (mean normalised
 * predictive entropy over the predicted foreground and its uncertain rim:
 * voxels above half the maximum entropy), here of the prediction's class
 * probabilities on the case's own grid.
 */
import { intensityStats, type IntensityStats } from '@medseg/medseg/data/fingerprint';
import { zyxShape, zyxSpacing, type Zyx } from '@medseg/medseg/data/axes';
import type { Volume } from '@medseg/medseg/io/volume';

export interface InputFingerprint {
  spacing: Zyx;
  shape: Zyx;
  /** Where the intensities were taken: the predicted foreground, or the whole image when it had too little. */
  intensityRegion: 'predicted-foreground' | 'image';
  /** Per channel. */
  intensity: IntensityStats[];
  modality: string | null;
  /** Other modality tags the input carried (DICOM: manufacturer, model, body part ...), as given. */
  tags: Record<string, string>;
  /** The uncertainty score (0 certain .. 1 uniform), null when the prediction had no probabilities. */
  uncertainty: number | null;
}

/** At most this many voxels per channel are sampled (uniformly strided) for the statistics. */
const MAX_SAMPLES = 200_000;
/** The predicted foreground is used when it has at least this many voxels. */
const MIN_FOREGROUND = 64;

const TAG_KEYS = ['manufacturer', 'manufacturerModelName', 'bodyPartExamined', 'magneticFieldStrength', 'kvp', 'convolutionKernel'];

/** Mean normalised predictive entropy over the predicted foreground and the voxels above half the maximum entropy. */
export function uncertaintyScore(probabilities: Volume, labels: Uint8Array | ArrayLike<number>): number {
  const K = probabilities.channels;
  const n = labels.length;
  const p = probabilities.data as ArrayLike<number>;
  if (p.length !== K * n) throw new Error(`probabilities of ${p.length / K} voxels for ${n} labels`);
  const logK = Math.log(Math.max(2, K));
  let count = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let h = 0;
    for (let k = 0; k < K; k++) {
      const q = p[k * n + i]!;
      if (q > 1e-12) h -= q * Math.log(q);
    }
    if (labels[i]! > 0 || h > 0.5 * logK) {
      count++;
      sum += h;
    }
  }
  return count ? sum / count / logK : 0;
}

/** The fingerprint of one case (its channel images), its predicted labels and, when kept, its class probabilities. */
export function inputFingerprint(images: Volume[], labels: Volume, probabilities?: Volume): InputFingerprint {
  const first = images[0]!;
  const lab = labels.data as ArrayLike<number>;
  const n = lab.length;
  let fg = 0;
  for (let i = 0; i < n; i++) if (lab[i]! > 0) fg++;
  const region = fg >= MIN_FOREGROUND ? 'predicted-foreground' : 'image';
  const take = region === 'image' ? n : fg;
  const stride = Math.max(1, Math.ceil(take / MAX_SAMPLES));
  const intensity: IntensityStats[] = [];
  for (const v of images) {
    const d = v.data as ArrayLike<number>;
    for (let c = 0; c < v.channels; c++) {
      const s: number[] = [];
      let seen = 0;
      for (let i = 0; i < n; i++) {
        if (region === 'predicted-foreground' && !(lab[i]! > 0)) continue;
        if (seen++ % stride === 0) s.push(d[c * n + i]!);
      }
      intensity.push(intensityStats(Float64Array.from(s)));
    }
  }
  const meta = first.meta as unknown as Record<string, unknown>;
  const tags: Record<string, string> = {};
  for (const k of TAG_KEYS) if (meta[k] !== undefined && meta[k] !== null && meta[k] !== '') tags[k] = String(meta[k]);
  const modality = first.meta.modality && first.meta.modality !== 'unknown' ? first.meta.modality : null;
  return {
    spacing: zyxSpacing(first),
    shape: zyxShape(first),
    intensityRegion: region,
    intensity,
    modality,
    tags,
    uncertainty: probabilities ? uncertaintyScore(probabilities, lab) : null,
  };
}
