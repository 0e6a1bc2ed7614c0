/**
 * A realistic synthetic comparison study for tests and demos of the report:
 * several models of different families on 30 cases, with the awkward values
 * real studies have (NaN Dice for an empty reference, +Inf HD95 for an empty
 * prediction), per-case subgroups, timings, calibration bins and phantom
 * overlays. Deterministic under its seed.
 */
import { renderOverlayPng } from '../eval/report/overlay.ts';
import type { MetricRow, Subgroups } from '../eval/statistics/rows.ts';
import { seededRandom } from '../util/random.ts';
import type { CalibrationBins } from '../eval/probabilistic.ts';
import type { ModelInfo, OverlaySelection, ReportInput } from '../eval/report/html-report.ts';
import type { ModelCardFaithfulness } from '../eval/report/modelcard.ts';

export interface SyntheticModel {
  name: string;
  architectureType: string;
  parameters: number;
  /** Expected Dice on an easy case. */
  skill: number;
  /** Over-confidence of its probabilities (0 = calibrated). */
  overconfidence: number;
  msPerCase: number;
}

export const SYNTHETIC_MODELS: SyntheticModel[] = [
  { name: 'nnU-Net 3d_fullres', architectureType: 'CNN', parameters: 30_790_000, skill: 0.905, overconfidence: 0.04, msPerCase: 2400 },
  { name: 'UNETR', architectureType: 'Transformer', parameters: 92_580_000, skill: 0.87, overconfidence: 0.1, msPerCase: 3100 },
  { name: 'Attention U-Net', architectureType: 'CNN + attention gates', parameters: 6_400_000, skill: 0.885, overconfidence: 0.07, msPerCase: 1300 },
  { name: 'SwinUNETR <v2> & "small"', architectureType: 'Hybrid CNN–Transformer', parameters: 15_700_000, skill: 0.895, overconfidence: 0.02, msPerCase: 2900 },
];

function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export function syntheticRows(
  nCases = 30,
  seed = 2024,
  models = SYNTHETIC_MODELS,
): { rows: MetricRow[]; subgroups: Subgroups; times: Record<string, number[]> } {
  const rand = seededRandom(seed);
  const sites = ['Site A (Siemens 3T)', 'Site B (GE 1.5T)', 'Site C (Philips 3T)'];
  const subgroups: Subgroups = {};
  const difficulty: number[] = [];
  for (let i = 0; i < nCases; i++) {
    const id = `case_${String(i + 1).padStart(3, '0')}`;
    const site = i % 3;
    subgroups[id] = {
      site: sites[site]!,
      sex: rand() < 0.5 ? 'F' : 'M',
      ...(i % 7 === 3 ? {} : { tumour_size: rand() < 0.4 ? 'small (<2 cm)' : 'large (≥2 cm)' }),
    };
    difficulty.push(Math.abs(gauss(rand)) * 0.06 + (site === 1 ? 0.05 : 0) + (subgroups[id]!.tumour_size?.startsWith('small') ? 0.06 : 0));
  }
  const rows: MetricRow[] = [];
  const times: Record<string, number[]> = {};
  for (const m of models) {
    times[m.name] = [];
    for (let i = 0; i < nCases; i++) {
      const id = `case_${String(i + 1).padStart(3, '0')}`;
      times[m.name]!.push(m.msPerCase * (0.9 + 0.25 * rand()) + (rand() < 0.05 ? m.msPerCase * 0.8 : 0));
      let dice = Math.min(0.985, Math.max(0, m.skill - difficulty[i]! + 0.035 * gauss(rand)));
      let hd95 = Math.max(0.8, 1.5 + (1 - dice) * 40 + 2.5 * Math.abs(gauss(rand)));
      if (i === 17) {
        // empty reference (lesion-free follow-up): Dice undefined, HD undefined
        dice = Number.NaN;
        hd95 = Number.NaN;
      } else if (i === 22 && m.skill < 0.9) {
        // the weaker models miss a small lesion completely: empty prediction
        dice = 0;
        hd95 = Number.POSITIVE_INFINITY;
      }
      const iou = Number.isNaN(dice) ? Number.NaN : dice / (2 - dice);
      rows.push({ model: m.name, case: id, label: 1, dice, iou, hd95, nsd_2mm: Number.isNaN(dice) ? Number.NaN : Math.min(1, dice + 0.04 * rand()) });
    }
  }
  return { rows, subgroups, times };
}

export function syntheticCalibration(m: SyntheticModel, seed = 7): CalibrationBins {
  const rand = seededRandom(seed);
  const confidence: number[] = [];
  const accuracy: number[] = [];
  const count: number[] = [];
  for (let b = 0; b < 10; b++) {
    const c = (b + 0.5) / 10;
    confidence.push(c);
    // over-confident models: accuracy pulled toward 0.5
    accuracy.push(Math.min(1, Math.max(0, c - m.overconfidence * (c - 0.5) * 2 + 0.01 * gauss(rand))));
    count.push(b === 0 || b === 9 ? 400_000 + Math.round(rand() * 1e5) : Math.round(3000 + 9000 * rand()));
  }
  return { confidence, accuracy, count };
}

/** Phantom overlay: a disc reference and a prediction whose overlap follows the case's Dice. */
export function syntheticOverlay(sel: OverlaySelection): Uint8Array {
  const w = 96;
  const h = 96;
  const rand = seededRandom(sel.case.length * 31 + Math.round((Number.isFinite(sel.value) ? sel.value : 0) * 1000));
  const image = new Float32Array(w * h);
  const reference = new Uint8Array(w * h);
  const prediction = new Uint8Array(w * h);
  const quality = Number.isFinite(sel.value) ? sel.value : 0;
  const shift = (1 - quality) * 22;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = x + w * y;
      const body = Math.hypot((x - 48) / 40, (y - 50) / 34);
      const organ = Math.hypot(x - 44, y - 46);
      image[i] = (body < 1 ? 60 : 0) + (organ < 20 ? 70 : 0) + 12 * rand();
      if (organ < 18) reference[i] = 1;
      if (quality > 0.05 && Math.hypot(x - 44 - shift, y - 46 + shift * 0.4) < 18 * (0.6 + 0.4 * quality)) prediction[i] = 1;
    }
  }
  return renderOverlayPng({ image, reference, prediction, width: w, height: h, window: [0, 150], scale: 2 });
}

/** A complete report input: 4 models × 30 cases with subgroups, times, calibration and overlays. */
export function syntheticReportInput(opts: { modelCardHref?: (m: string) => string } = {}): ReportInput {
  const { rows, subgroups, times } = syntheticRows();
  const models: ModelInfo[] = SYNTHETIC_MODELS.map((m) => ({
    name: m.name,
    architectureType: m.architectureType,
    parameters: m.parameters,
    inferenceTimesMs: times[m.name]!,
    threads: 2,
    modelCardHref: opts.modelCardHref?.(m.name),
  }));
  const calibration: Record<string, CalibrationBins> = {};
  SYNTHETIC_MODELS.forEach((m, i) => (calibration[m.name] = syntheticCalibration(m, 7 + i)));
  return {
    title: 'Liver tumour segmentation: model comparison',
    subtitle: 'Synthetic demonstration study · CT, portal venous phase · 30 validation cases',
    dataset: 'Synthetic (report test fixture)',
    rows,
    models,
    subgroups,
    calibration,
    renderOverlay: syntheticOverlay,
    bootstrap: { resamples: 1000, seed: 1 },
  };
}

/** A model card's faithfulness numbers (Grad-CAM on one validation case), with the given changes. */
export function syntheticFaithfulness(change: Partial<ModelCardFaithfulness> = {}): ModelCardFaithfulness {
  return {
    method: 'gradcam',
    layer: 'decoder.2',
    classIndex: 1,
    className: 'tumour',
    case: 'case_007',
    fold: 0,
    caseChoice: 'median Dice of the fold',
    regionVoxels: 12345,
    massInRegion: 0.4321,
    randomisation: { spearman: 0.0712, spearmanAbs: 0.6543, passes: false, seed: 1 },
    deletion: { auc: 0.151, randomAuc: 0.876, steps: 10 },
    seconds: 4.2,
    ...change,
  };
}
