/**
 * Explanations and uncertainty on trained models, measured on held-out cases
 * and timed against one plain prediction in the same run:
 * - Grad-CAM's mass inside the reference mask dilated by a few voxels (and
 *   the share a uniform map would put there), the randomisation test and the
 *   deletion curve against a random order;
 * - calibration: ECE of the held-out probabilities without and with the
 *   model's temperature (fitted on its validation cases), beside the
 *   validation numbers in calibration.json;
 * - triage: AUROC of the TTA uncertainty score for "Dice below the model's
 *   failure bar", Spearman's rho of score and Dice, the cases the model's
 *   rule flags;
 * - seconds per case of a plain prediction (the plan's TTA), the TTA
 *   uncertainty prediction, Grad-CAM, occlusion, Grad-CAM with its
 *   faithfulness checks, and MC dropout where the network has dropout.
 * The models are those the accuracy benches train (runs/bench-hippocampus/model
 * from `npm run bench -- hippocampus`, runs/bench-drive/model from
 * `npm run bench -- drive`); held-out cases: hippocampus's validation split
 * (the only labelled cases the trainer did not fit; its temperature and
 * triage rule were chosen on them too, so their held-out AUROC is optimistic),
 * DRIVE's 20 test images inside their field-of-view masks.
 *
 *   npm run bench -- explain [--hippocampus-model DIR] [--drive-model DIR] [--hybridnet-model DIR] [--only hippocampus,drive,hybridnet]
 *                            [--explain-cases 5] [--occlusion-cases 1] [--cases N]
 * (--hybridnet-model: also a hippocampus model with dropout layers, for MC dropout; --only: measure these and keep the
 * other entries of explain.json; --cases: the first N held-out cases of each dataset only, for a quick look, not written)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { calibrationError } from '../packages/medseg/src/eval/calibration.ts';
import { evaluateCase } from '../packages/medseg/src/eval/metrics.ts';
import { spearman } from '../packages/medseg/src/eval/statistics/correlation.ts';
import { auroc } from '../packages/medseg/src/eval/triage.ts';
import { explainVolumes, type CaseExplanation } from '../packages/medseg/src/explain/explain-case.ts';
import { supportsMcDropout } from '../packages/medseg/src/infer/uncertainty.ts';
import { disposeModel, loadModel, predictVolumes, readInputCase, type LoadedModel } from '../packages/medseg/src/infer/predict.ts';
import { readVolume } from '../packages/medseg/src/io/read.ts';
import type { Volume } from '../packages/medseg/src/io/volume.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { datasetCases } from './lib/seg2d.ts';
import { median } from './lib/stats.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface HeldOutCase {
  id: string;
  image: string;
  label: string;
  region?: string;
}

interface BenchDataset {
  name: string;
  model: string;
  cases: HeldOutCase[];
  /** Foreground labels scored (Dice averaged over them). */
  labels: number[];
  /** The class Grad-CAM explains. */
  explainClass: number;
  /** Voxels the reference mask is dilated by before Grad-CAM's mass in it is measured. */
  dilation: number;
}

/** The reference mask of `label` grown by `r` voxels along each axis (a cube / square structuring element), as separable max filters. */
function dilatedMask(v: Volume, label: number, r: number): Uint8Array {
  const [nx, ny, nz] = v.size;
  let m = Uint8Array.from(v.data as ArrayLike<number>, (x) => (x === label ? 1 : 0));
  const strides = [1, nx, nx * ny];
  const sizes = [nx, ny, nz];
  for (let axis = 0; axis < 3; axis++) {
    if (sizes[axis]! === 1) continue;
    const out = new Uint8Array(m.length);
    const s = strides[axis]!;
    const n = sizes[axis]!;
    for (let i = 0; i < m.length; i++) {
      if (!m[i]) continue;
      const c = Math.floor(i / s) % n;
      for (let d = Math.max(0, c - r); d <= Math.min(n - 1, c + r); d++) out[i + (d - c) * s] = 1;
    }
    m = out;
  }
  return m;
}

/** Share of the heat's positive mass inside `mask`, and the share a uniform map would put there. */
function massInside(heat: Volume, mask: Uint8Array): { mass: number; uniform: number } {
  let inside = 0;
  let total = 0;
  let voxels = 0;
  for (let i = 0; i < mask.length; i++) {
    const h = Math.max(0, heat.data[i]!);
    total += h;
    if (mask[i]) {
      inside += h;
      voxels++;
    }
  }
  return { mass: total > 0 ? inside / total : Number.NaN, uniform: voxels / mask.length };
}

/** Logits whose softmax is `p` (planar [K, n]), interleaved per voxel as calibrationError takes them, over the voxels of `region`. */
function logProbabilities(p: Volume, K: number, region?: Uint8Array): { logits: Float64Array; n: number; keep: number[] } {
  const n = p.data.length / K;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!region || region[i]) keep.push(i);
  const logits = new Float64Array(keep.length * K);
  keep.forEach((i, j) => {
    for (let k = 0; k < K; k++) logits[j * K + k] = Math.log(Math.max(1e-12, p.data[k * n + i]!));
  });
  return { logits, n: keep.length, keep };
}

const timed = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
};

function heldOutHippocampus(): HeldOutCase[] {
  const root = dataPath('msd-hippocampus');
  return HIPPOCAMPUS_SPLIT.validation.map((id) => ({ id, image: join(root, 'images', `${id}.nii.gz`), label: join(root, 'labels', `${id}.nii.gz`) }));
}

function heldOutDrive(modelDir: string): HeldOutCase[] {
  const dataset = join(dirname(modelDir), 'dataset');
  if (!existsSync(join(dataset, 'dataset.json')))
    throw new Error(`no DRIVE dataset at ${dataset}: run npm run bench -- drive first (it imports the dataset beside the model)`);
  return datasetCases(dataset).test.map((c) => ({
    id: c.id,
    image: c.imagePaths[0]!,
    label: c.labelPath!,
    ...(c.regionMaskPath ? { region: c.regionMaskPath } : {}),
  }));
}

async function measure(d: BenchDataset, o: { explainCases: number; occlusionCases: number }) {
  const model: LoadedModel = loadModel(d.model);
  const uncalibrated: LoadedModel = { ...model, calibration: null };
  const K = model.plan.network.numClasses;
  const channels = model.plan.channels.length;
  const mcDropout = model.nets.every((n) => supportsMcDropout(n));
  const perCase: {
    id: string;
    dice: number;
    score: number;
    flagged: boolean | null;
    plain_s: number;
    uncertainty_s: number;
    mc_dropout_s: number | null;
  }[] = [];
  const before: { logits: Float64Array; labels: Int32Array }[] = [];
  const after: { logits: Float64Array; labels: Int32Array }[] = [];
  const explanations: {
    id: string;
    mass: number;
    uniform: number;
    gradcam_s: number;
    faithful?: CaseExplanation['faithfulness'];
    faithfulness_s?: number;
    occlusion_s?: number;
  }[] = [];
  try {
    for (const [index, c] of d.cases.entries()) {
      const images = await readInputCase(c.image, channels);
      const ref = await readVolume(c.label);
      const region = c.region ? Uint8Array.from((await readVolume(c.region)).data as ArrayLike<number>, (x) => (x > 0 ? 1 : 0)) : undefined;
      const [plain, plainSeconds] = timed(() => predictVolumes(model, images, { keepProbabilities: true }));
      const ev = evaluateCase(plain.labels, ref, { labels: d.labels, distances: false, ...(region ? { regionMask: region } : {}) });
      const dice = ev.classes.reduce((s, m) => s + (m.dice as number), 0) / ev.classes.length;
      const raw = predictVolumes(uncalibrated, images, { keepProbabilities: true });
      for (const [p, into] of [
        [raw.probabilities!, before],
        [plain.probabilities!, after],
      ] as const) {
        const { logits, keep } = logProbabilities(p, K, region);
        into.push({ logits, labels: Int32Array.from(keep, (i) => ref.data[i]!) });
      }
      const [withUncertainty, uncertaintySeconds] = timed(() => predictVolumes(model, images, { uncertainty: { sources: ['tta'] } }));
      const u = withUncertainty.uncertainty!;
      let mcSeconds: number | null = null;
      if (mcDropout)
        mcSeconds = timed(() => predictVolumes(model, images, { tta: false, uncertainty: { sources: ['mc-dropout'], mcSamples: 10, seed: 1 } }))[1];
      perCase.push({
        id: c.id,
        dice,
        score: u.score.meanEntropy,
        flagged: u.flagged,
        plain_s: plainSeconds,
        uncertainty_s: uncertaintySeconds,
        mc_dropout_s: mcSeconds,
      });

      if (index < o.explainCases) {
        const mask = dilatedMask(ref, d.explainClass, d.dilation);
        const [cam, camSeconds] = timed(() => explainVolumes(model, images, { method: 'gradcam', classIndex: d.explainClass, faithfulness: false }));
        const [checked, checkedSeconds] = timed(() =>
          explainVolumes(model, images, { method: 'gradcam', classIndex: d.explainClass, faithfulness: true, seed: 1 }),
        );
        const row: (typeof explanations)[number] = {
          id: c.id,
          ...massInside(cam.heat, mask),
          gradcam_s: camSeconds,
          faithful: checked.faithfulness,
          faithfulness_s: checkedSeconds,
        };
        if (index < o.occlusionCases)
          row.occlusion_s = timed(() => explainVolumes(model, images, { method: 'occlusion', classIndex: d.explainClass, faithfulness: false }))[1];
        explanations.push(row);
      }
      console.log(
        `${d.name} ${c.id}: Dice ${dice.toFixed(3)}, score ${u.score.meanEntropy.toFixed(4)}${u.flagged ? ' REVIEW' : ''}, ${plainSeconds.toFixed(2)} s`,
      );
    }
  } finally {
    disposeModel(model);
  }
  const pool = (parts: { logits: Float64Array; labels: Int32Array }[]) => {
    const n = parts.reduce((s, p) => s + p.labels.length, 0);
    const logits = new Float64Array(n * K);
    const labels = new Int32Array(n);
    let at = 0;
    for (const p of parts) {
      logits.set(p.logits, at * K);
      labels.set(p.labels, at);
      at += p.labels.length;
    }
    return calibrationError(logits, labels, K).ece;
  };
  const cal = model.calibration;
  const failureDice = cal?.triage?.failureDice ?? 0.8;
  const failed = perCase.map((p) => p.dice < failureDice);
  const nFailed = failed.filter(Boolean).length;
  const plainMedian = median(perCase.map((p) => p.plain_s));
  const faithful = explanations.filter((e) => e.faithful);
  const ratio = (xs: number[]) => (xs.length ? median(xs) / plainMedian : null);
  return {
    dataset: d.name,
    model: d.model,
    architecture: model.plan.network.architecture,
    heldOutCases: perCase.length,
    meanDice: perCase.reduce((s, p) => s + p.dice, 0) / perCase.length,
    gradcam: {
      class: d.explainClass,
      cases: explanations.length,
      dilationVoxels: d.dilation,
      massInDilatedReference: median(explanations.map((e) => e.mass)),
      uniformMapShare: median(explanations.map((e) => e.uniform)),
      randomisationPassed: `${faithful.filter((e) => e.faithful!.randomisation.passes).length} of ${faithful.length}`,
      randomisationRho: median(faithful.map((e) => e.faithful!.randomisation.spearman)),
      randomisationRhoAbs: median(faithful.map((e) => e.faithful!.randomisation.spearmanAbs)),
      deletionAuc: median(faithful.map((e) => e.faithful!.deletion.auc)),
      deletionRandomAuc: median(faithful.map((e) => e.faithful!.deletion.randomAuc)),
      perCase: explanations.map((e) => ({
        id: e.id,
        mass: e.mass,
        uniform: e.uniform,
        rho: e.faithful?.randomisation.spearman,
        rhoAbs: e.faithful?.randomisation.spearmanAbs,
        deletionAuc: e.faithful?.deletion.auc,
        deletionRandomAuc: e.faithful?.deletion.randomAuc,
      })),
    },
    calibration: {
      temperature: cal?.temperature ?? null,
      validation: cal ? { eceBefore: cal.ece.before, eceAfter: cal.ece.after, voxels: cal.voxels } : null,
      heldOut: { eceBefore: pool(before), eceAfter: pool(after), voxels: before.reduce((s, p) => s + p.labels.length, 0) },
    },
    triage: {
      score: 'mean normalised predictive entropy of the TTA members over the prediction and its uncertain rim',
      failureDice,
      failures: nFailed,
      auroc:
        nFailed > 0 && nFailed < perCase.length
          ? auroc(
              perCase.map((p) => p.score),
              failed,
            )
          : null,
      spearmanScoreDice: spearman(
        perCase.map((p) => p.score),
        perCase.map((p) => p.dice),
      ),
      flagged: perCase.filter((p) => p.flagged).length,
      failuresFlagged: perCase.filter((p, i) => p.flagged && failed[i]).length,
      validationRule: cal?.triage ?? null,
    },
    seconds_per_case: {
      plain_prediction: plainMedian,
      tta_uncertainty: median(perCase.map((p) => p.uncertainty_s)),
      gradcam: explanations.length ? median(explanations.map((e) => e.gradcam_s)) : null,
      gradcam_with_faithfulness: explanations.length ? median(explanations.map((e) => e.faithfulness_s!)) : null,
      occlusion: explanations.some((e) => e.occlusion_s !== undefined)
        ? median(explanations.flatMap((e) => (e.occlusion_s === undefined ? [] : [e.occlusion_s])))
        : null,
      mc_dropout_10: mcDropout ? median(perCase.map((p) => p.mc_dropout_s!)) : null,
      mc_dropout_note: mcDropout ? '10 samples, no TTA' : `not applicable: ${model.plan.network.architecture} has no dropout layer`,
    },
    ratio_to_plain_prediction: {
      tta_uncertainty: ratio(perCase.map((p) => p.uncertainty_s)),
      gradcam: ratio(explanations.map((e) => e.gradcam_s)),
      gradcam_with_faithfulness: ratio(explanations.map((e) => e.faithfulness_s!)),
      occlusion: ratio(explanations.flatMap((e) => (e.occlusion_s === undefined ? [] : [e.occlusion_s]))),
      mc_dropout_10: mcDropout ? ratio(perCase.map((p) => p.mc_dropout_s!)) : null,
    },
    perCase,
  };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      'hippocampus-model': { type: 'string', default: join(repoRoot, 'runs/bench-hippocampus/model') },
      'drive-model': { type: 'string', default: join(repoRoot, 'runs/bench-drive/model') },
      'hybridnet-model': { type: 'string' },
      only: { type: 'string' },
      'explain-cases': { type: 'string', default: '5' },
      'occlusion-cases': { type: 'string', default: '1' },
      cases: { type: 'string' },
    },
  });
  const all = { hippocampus: values['hippocampus-model']!, drive: values['drive-model']!, hybridnet: values['hybridnet-model'] };
  const wanted = values.only ? values.only.split(',') : Object.keys(all).filter((k) => all[k as keyof typeof all] !== undefined);
  for (const w of wanted) {
    const dir = all[w as keyof typeof all];
    if (!(w in all)) throw new Error(`--only takes hippocampus, drive, hybridnet; got ${w}`);
    if (dir === undefined || !existsSync(join(dir, 'plan.json'))) {
      throw new Error(
        `no trained ${w} model at ${dir ?? '(none given)'}: run npm run bench -- ${w === 'drive' ? 'drive' : 'hippocampus'} first, or pass --${w}-model`,
      );
    }
  }
  const o = { explainCases: Number(values['explain-cases']), occlusionCases: Number(values['occlusion-cases']) };
  const limit = values.cases === undefined ? Infinity : Number(values.cases);
  const loadBefore = loadavg();
  const command = `npm run bench -- explain ${args.join(' ')}`.trim();
  const datasets = [];
  for (const w of wanted) {
    const dir = all[w as keyof typeof all]!;
    const d =
      w === 'drive'
        ? { name: 'drive', model: dir, cases: heldOutDrive(dir).slice(0, limit), labels: [1], explainClass: 1, dilation: 3 }
        : { name: 'msd-hippocampus', model: dir, cases: heldOutHippocampus().slice(0, limit), labels: [1, 2], explainClass: 1, dilation: 2 };
    const load = loadavg();
    datasets.push({ ...(await measure(d, o)), date: new Date().toISOString(), command, loadavgBefore: load, loadavgAfter: loadavg() });
  }
  const machine = { cpu: cpus()[0]?.model, cores: cpus().length, loadavgBefore: loadBefore, loadavgAfter: loadavg() };
  if (limit === Infinity) {
    // A run of some datasets (--only) replaces their entries (same dataset and architecture) and keeps the others.
    const path = join(here, 'results/explain.json');
    type Entry = { dataset: string; architecture: string };
    const previous = values.only && existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { datasets: Entry[] }).datasets : [];
    const key = (e: Entry) => `${e.dataset}/${e.architecture}`;
    const fresh = new Set(datasets.map(key));
    const result = { command, date: new Date().toISOString(), machine, datasets: [...previous.filter((e) => !fresh.has(key(e))), ...datasets] };
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  }
  for (const d of datasets) {
    console.log(
      `${d.dataset} (${d.architecture}, ${d.heldOutCases} held-out cases, Dice ${d.meanDice.toFixed(3)}): Grad-CAM mass in reference+${d.gradcam.dilationVoxels} ${d.gradcam.massInDilatedReference.toFixed(3)} (uniform ${d.gradcam.uniformMapShare.toFixed(3)}), randomisation ${d.gradcam.randomisationPassed}, ` +
        `ECE held-out ${d.calibration.heldOut.eceBefore.toFixed(4)} -> ${d.calibration.heldOut.eceAfter.toFixed(4)}, triage AUROC ${d.triage.auroc?.toFixed(3) ?? '-'} (${d.triage.failures} failures), ` +
        `x plain: Grad-CAM ${d.ratio_to_plain_prediction.gradcam?.toFixed(2) ?? '-'}, occlusion ${d.ratio_to_plain_prediction.occlusion?.toFixed(1) ?? '-'}, TTA uncertainty ${d.ratio_to_plain_prediction.tta_uncertainty?.toFixed(2) ?? '-'}`,
    );
  }
}
