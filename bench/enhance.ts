/**
 * MR enhancement on MSD hippocampus (the fixed split of
 * demo/hippocampus-split.ts: models train on its training cases, the last
 * 10 of them validating the epochs; every method is scored on its
 * validation cases). Intensities are divided by each clean volume's
 * 99th-percentile foreground, and PSNR / SSIM (Gaussian window, sigma 1.5)
 * take the clean volume's max - min as the data range.
 *
 * Denoising at two Rician levels (5 % and 10 % of that scale; the noise of
 * each scored volume is seeded, the same for every method): the noisy input;
 * medseg supervised (a 2D U-Net [16, 32, 64] on 32² patches, L1 on the
 * residual, noisy/clean pairs drawn on the fly); medseg Noise2Void (the
 * same network trained on fixed noisy copies of the training volumes, no
 * clean targets); scikit-image non-local means and total variation (weight
 * tuned on training cases) in bench/py/enhance_peer.py, run in the same
 * bench run.
 * Through-plane super-resolution x2 and x4 along z (slices averaged in
 * groups of k): cubic B-spline interpolation by scipy.ndimage.zoom (and by
 * medseg's own, which should score the same) against medseg's network
 * refining it.
 * Each medseg model trains for --minutes; time per volume is the wall time
 * of one volume's inference (medseg on every core, the Python peers on one).
 *
 *   npm run bench -- enhance [--minutes 3] [--cases 34] [--smoke]
 * (--smoke: 3 training and 2 scored cases, 5 s of training per model, nothing written)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as torch from '@medseg/torch';
import { zoomAxis } from '../packages/medseg/src/data/bspline-zoom.ts';
import { normalise, prepareVolume, type Shape3 } from '../packages/medseg/src/data/enhance-pairs.ts';
import { addRicianNoise } from '../packages/medseg/src/data/rician.ts';
import { cropToMultiple, thickSlices } from '../packages/medseg/src/data/thick-slices.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { psnr, ssim } from '../packages/medseg/src/eval/image-quality.ts';
import { enhanceArray } from '../packages/medseg/src/infer/enhance.ts';
import { readVolume } from '../packages/medseg/src/io/read.ts';
import { EnhancementModel } from '../packages/medseg/src/models/enhance-model.ts';
import type { EnhanceSettings } from '../packages/medseg/src/plan/enhance-settings.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { DEFAULT_ENHANCE_TRAINING, trainEnhancement, type EnhanceTrainResult } from '../packages/medseg/src/train/enhance-trainer.ts';
import { createProgress } from '../packages/medseg/src/util/progress.ts';
import { mixSeed } from '../packages/medseg/src/util/random.ts';
import { PYTHON } from './lib/peer.ts';
import { writeResult } from './lib/report.ts';
import { round } from './lib/stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const LEVELS = [0.05, 0.1];
const FACTORS = [2, 4];
const SR_AXIS = 0;
const TV_WEIGHTS = [0.01, 0.02, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24];
const NETWORK: Partial<EnhanceSettings> = { dims: 2, features: [16, 32, 64], patch: [32, 32], loss: 'l1' };

interface Scores {
  psnr: number;
  ssim: number;
  seconds?: number;
}

interface Vol {
  id: string;
  data: Float32Array;
  shape: Shape3;
}

async function loadCases(ids: string[]): Promise<Vol[]> {
  const out: Vol[] = [];
  for (const id of ids) {
    const v = await readVolume(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`));
    out.push({ id, data: normalise(v.data).data, shape: [v.size[2], v.size[1], v.size[0]] });
  }
  return out;
}

function scoresOf(clean: Float32Array, test: Float32Array, shape: Shape3): Scores {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of clean) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return { psnr: psnr(clean, test, hi - lo), ssim: ssim(clean, test, shape, { dataRange: hi - lo }) };
}

function mean(rows: Scores[]): Scores {
  const m = (k: keyof Scores) => rows.reduce((s, r) => s + (r[k] ?? 0), 0) / rows.length;
  const out: Scores = { psnr: round(m('psnr'), 3), ssim: round(m('ssim'), 4) };
  if (rows.every((r) => r.seconds !== undefined)) out.seconds = round(m('seconds'), 3);
  return out;
}

async function trainModel(
  settings: Partial<EnhanceSettings>,
  train: Vol[],
  val: Vol[],
  minutes: number,
  work: string,
  name: string,
): Promise<{ model: EnhancementModel; result: EnhanceTrainResult }> {
  torch.manualSeed(20261203);
  const model = EnhancementModel.create({ ...NETWORK, ...settings });
  const seed = 20261203;
  const prep = (vs: Vol[], salt: number) => vs.map((v, i) => prepareVolume(v.data, v.shape, model.settings, mixSeed(seed, salt, i)));
  process.stderr.write(`medseg ${name}: training for ${minutes} min\n`);
  const cfg = { ...DEFAULT_ENHANCE_TRAINING, timeBudgetMinutes: minutes, batchSize: 16, iterationsPerEpoch: 50, seed };
  const result = await trainEnhancement(model, cfg, { train: prep(train, 1), val: prep(val, 2) }, join(work, name), { progress: createProgress('silent') });
  return { model, result };
}

function apply(model: EnhancementModel, input: Float32Array, shape: Shape3): { out: Float32Array; seconds: number } {
  const t0 = performance.now();
  const out = enhanceArray(model, input, shape);
  return { out, seconds: (performance.now() - t0) / 1000 };
}

function writeRaw(path: string, a: Float32Array): string {
  writeFileSync(path, Float64Array.from(a));
  return path;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '3' },
      cases: { type: 'string', default: String(HIPPOCAMPUS_SPLIT.validation.length) },
      smoke: { type: 'boolean', default: false },
    },
  });
  const smoke = values.smoke;
  const minutes = smoke ? 5 / 60 : Number(values.minutes);
  const loadBefore = loadavg();
  const trainIds = smoke ? HIPPOCAMPUS_SPLIT.train.slice(0, 3) : HIPPOCAMPUS_SPLIT.train;
  const fitIds = smoke ? trainIds.slice(0, 2) : trainIds.slice(0, trainIds.length - 10);
  const epochIds = smoke ? trainIds.slice(2) : trainIds.slice(trainIds.length - 10);
  const scoredIds = HIPPOCAMPUS_SPLIT.validation.slice(0, smoke ? 2 : Number(values.cases));
  const fit = await loadCases(fitIds);
  const epochVal = await loadCases(epochIds);
  const scored = await loadCases(scoredIds);
  const tuneCases = fit.slice(0, smoke ? 2 : 8);
  const work = mkdtempSync(join(tmpdir(), 'medseg-bench-enhance-'));
  const medseg: Record<string, unknown>[] = [];
  const request: { denoise: unknown[]; sr: unknown[]; tvWeights: number[] } = { denoise: [], sr: [], tvWeights: smoke ? [0.04, 0.08] : TV_WEIGHTS };
  const perCase: Record<string, Record<string, Scores>> = {};
  try {
    for (const [li, level] of LEVELS.entries()) {
      const noisy = scored.map((v, i) => addRicianNoise(v.data, level, mixSeed(77, li, i)));
      const tuneNoisy = tuneCases.map((v, i) => addRicianNoise(v.data, level, mixSeed(78, li, i)));
      const file = (kind: string, id: string) => join(work, `${kind}-${level}-${id}.raw`);
      request.denoise.push({
        level,
        tune: tuneCases.map((v, i) => ({
          id: v.id,
          shape: v.shape,
          clean: writeRaw(file('clean', v.id), v.data),
          noisy: writeRaw(file('noisy', v.id), tuneNoisy[i]!),
        })),
        cases: scored.map((v, i) => ({
          id: v.id,
          shape: v.shape,
          clean: writeRaw(file('clean', v.id), v.data),
          noisy: writeRaw(file('noisy', v.id), noisy[i]!),
        })),
      });
      for (const [mode, settings] of [
        ['supervised', { task: 'denoise', noise: level }],
        ['noise2void', { task: 'denoise', noise: level, selfSupervised: true }],
      ] as const) {
        const name = `denoise-${level}-${mode}`;
        const { model, result } = await trainModel(settings, fit, epochVal, minutes, work, name);
        const rows = scored.map((v, i) => {
          const r = apply(model, noisy[i]!, v.shape);
          const s = { ...scoresOf(v.data, r.out, v.shape), seconds: r.seconds };
          (perCase[`${v.id}`] ??= {})[name] = s;
          return s;
        });
        model.net.dispose();
        medseg.push({ task: 'denoise', level, method: `medseg ${mode}`, training: result, mean: mean(rows) });
      }
      const inputRows = scored.map((v, i) => scoresOf(v.data, noisy[i]!, v.shape));
      medseg.push({ task: 'denoise', level, method: 'noisy input (medseg metrics)', mean: mean(inputRows) });
    }
    for (const factor of FACTORS) {
      const cut = scored.map((v) => cropToMultiple(v.data, v.shape, SR_AXIS, factor));
      const thick = cut.map((c) => thickSlices(c.data, c.shape, SR_AXIS, factor));
      request.sr.push({
        factor,
        axis: SR_AXIS,
        cases: scored.map((v, i) => ({
          id: v.id,
          shape: cut[i]!.shape,
          thickShape: thick[i]!.shape,
          clean: writeRaw(join(work, `sr-clean-${factor}-${v.id}.raw`), cut[i]!.data),
          thick: writeRaw(join(work, `sr-thick-${factor}-${v.id}.raw`), thick[i]!.data),
        })),
      });
      const cubic = thick.map((t) => {
        const t0 = performance.now();
        const z = zoomAxis(t.data, t.shape, SR_AXIS, factor);
        return { ...z, seconds: (performance.now() - t0) / 1000 };
      });
      const cubicRows = cubic.map((z, i) => ({ ...scoresOf(cut[i]!.data, z.data, z.shape), seconds: z.seconds }));
      medseg.push({ task: 'sr', factor, method: 'medseg cubic B-spline', mean: mean(cubicRows) });
      const name = `sr-x${factor}`;
      const { model, result } = await trainModel({ task: 'sr', factor, axis: SR_AXIS }, fit, epochVal, minutes, work, name);
      const rows = cubic.map((z, i) => {
        const r = apply(model, z.data, z.shape);
        const s = { ...scoresOf(cut[i]!.data, r.out, z.shape), seconds: r.seconds + z.seconds };
        (perCase[scored[i]!.id] ??= {})[name] = s;
        return s;
      });
      model.net.dispose();
      medseg.push({ task: 'sr', factor, method: 'medseg network', training: result, mean: mean(rows) });
    }
    process.stderr.write('scikit-image / SciPy peers\n');
    const r = spawnSync(PYTHON, [join(here, 'py', 'enhance_peer.py')], {
      input: JSON.stringify(request),
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    if (r.status !== 0) throw new Error(`enhance_peer.py failed (${r.status ?? r.signal}):\n${r.stderr}`);
    const peer = JSON.parse(r.stdout) as {
      denoise: { level: number; tvWeight: number; tvTuning: unknown[]; cases: { id: string; noisy: Scores; nlm: Scores; tv: Scores }[] }[];
      sr: { factor: number; cases: { id: string; cubic: Scores }[] }[];
    };
    const summary: { task: string; setting: string; method: string; psnr: number; ssim: number; secondsPerVolume: number | null }[] = [];
    const add = (task: string, setting: string, method: string, m: Scores) =>
      summary.push({ task, setting, method, psnr: m.psnr, ssim: m.ssim, secondsPerVolume: m.seconds ?? null });
    for (const d of peer.denoise) {
      const setting = `Rician ${Math.round(d.level * 100)} %`;
      add('denoise', setting, 'noisy input', mean(d.cases.map((c) => c.noisy)));
      add('denoise', setting, `scikit-image NLM (fast, h = 0.8 sigma_est)`, mean(d.cases.map((c) => c.nlm)));
      add('denoise', setting, `scikit-image TV Chambolle (weight ${d.tvWeight})`, mean(d.cases.map((c) => c.tv)));
      for (const m of medseg.filter((x) => x.task === 'denoise' && x.level === d.level && String(x.method).startsWith('medseg')))
        add('denoise', setting, String(m.method), m.mean as Scores);
    }
    for (const s of peer.sr) {
      const setting = `x${s.factor} through-plane`;
      add('sr', setting, 'SciPy cubic B-spline (zoom order 3)', mean(s.cases.map((c) => c.cubic)));
      for (const m of medseg.filter((x) => x.task === 'sr' && x.factor === s.factor)) add('sr', setting, String(m.method), m.mean as Scores);
    }
    process.stdout.write(`MSD hippocampus, ${scored.length} validation volumes, ${round(minutes, 2)} min of training per medseg model\n`);
    process.stdout.write(`${'task'.padEnd(22)}${'method'.padEnd(48)}${'PSNR'.padStart(8)}${'SSIM'.padStart(8)}${'s/vol'.padStart(8)}\n`);
    for (const s of summary) {
      process.stdout.write(
        `${s.setting.padEnd(22)}${s.method.padEnd(48)}${s.psnr.toFixed(2).padStart(8)}${s.ssim.toFixed(4).padStart(8)}${(s.secondsPerVolume === null ? '-' : s.secondsPerVolume.toFixed(3)).padStart(8)}\n`,
      );
    }
    if (smoke) {
      process.stdout.write('(smoke run: nothing written)\n');
      return;
    }
    const path = writeResult(
      'enhance',
      argv,
      {
        split: { train: fitIds.length, epochValidation: epochIds.length, scored: scoredIds },
        threads: torch.getNumThreads(),
        settings: {
          levels: LEVELS,
          factors: FACTORS,
          srAxis: 'z',
          network: NETWORK,
          minutesPerModel: minutes,
          tvWeights: TV_WEIGHTS,
          tvTuningCases: tuneCases.map((c) => c.id),
        },
        summary,
        medseg,
        peer: { denoise: peer.denoise.map((d) => ({ level: d.level, tvWeight: d.tvWeight, tvTuning: d.tvTuning })) },
        perCase: { medseg: perCase, peer },
        loadavgAfter: loadavg(),
      },
      loadBefore,
    );
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
