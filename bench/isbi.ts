/**
 * ISBI 2012 EM (2D): train on slices 0-23, test on slices 24-29, 10-minute
 * training budget. Dice of the membrane class (label 0 in the original masks)
 * and of the cell class. Writes bench/results/isbi.json.
 *
 * All 24 labelled slices are trained on and the final weights are tested, as
 * nnU-Net's final "all" model does: with 24 images, holding 4 out for model
 * selection costs a sixth of the data, and with the schedule decaying to the
 * end of the budget the final epoch is the one to keep. Slices 20-23 are still
 * scored every epoch to show progress; they are not held out.
 *
 * The labels sit about 0.6 px above the image's membranes
 * (bench/py/isbi_label_offset.py writes bench/results/isbi-label-offset.json),
 * an offset a mirror- and rotation-augmented model cannot learn, so it lowers
 * the membrane Dice a little.
 *
 * Instance level: the cells of each test slice as 4-connected components of
 * the pixels with membrane probability < 0.5, and as a marker watershed over the membrane
 * probability (seeds at probability <= 0.1, flooding pixels below 0.5:
 * infer/instances.ts: seedless cell regions stay cells), against the reference cells (components of the
 * reference's cell class). Scores: the ISBI leaderboard's foreground-
 * restricted V_Rand and V_Info, detection F1 at IoU 0.5 and mean AP over
 * IoU 0.5:0.95. Peer: scikit-image's label and watershed on the same
 * probabilities (bench/py/instances_peer.py); its adapted_rand_error also
 * scores medseg's label maps, a check of medseg's V_Rand (distinct pairs).
 *
 *   npm run bench -- isbi [--minutes 10] [--resume] [--skeleton-recall <weight>] [--average-weights <from> [--average-lr <share>]]
 *
 * The levers (planning choices) train in a folder of their own and write
 * bench/results/isbi-<lever>.json, leaving isbi.json as it is:
 * --skeleton-recall adds the skeleton-recall loss term at that weight (thin
 * structures); --average-weights averages the weights of the epochs after
 * that share of the run, and the result also scores the averaged weights on
 * the same test images (`averaged`), a comparison within one training run;
 * with --average-lr it is stochastic weight averaging (the learning rate
 * annealed to that share of its peak where averaging starts and held;
 * bench/results/isbi-swa.json).
 * A run trains anew each time; --resume continues a killed one from its
 * checkpoint.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importIsbi2012 } from '../packages/medseg/src/data/import.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { detectionScores, randInfoScores } from '../packages/medseg/src/eval/instance-metrics.ts';
import { cellsFromBoundaries, instancesOfClass } from '../packages/medseg/src/infer/instances.ts';
import type { Prediction } from '../packages/medseg/src/infer/predict.ts';
import type { Volume } from '../packages/medseg/src/io/volume.ts';
import { PYTHON } from './lib/peer.ts';
import { median } from './lib/stats.ts';
import { datasetCases, LEVER_OPTIONS, runSeg2d, planSummary, seg2dLevers } from './lib/seg2d.ts';
import { textTable } from '../packages/medseg/src/cli/output.ts';

const here = dirname(fileURLToPath(import.meta.url));

const SEED_BELOW = 0.1;

interface InstanceCase {
  id: string;
  shape: [number, number];
  probability: string;
  reference: string;
  referenceCells: Int32Array;
  medseg: Record<string, { labels: Int32Array; seconds: number; path: string }>;
}

/** The slice's membrane probability, reference cells and medseg's two cell maps, written raw for the peer. */
function writeInstanceInputs(dir: string, id: string, pred: Prediction, ref: Volume): InstanceCase {
  const size = ref.size;
  const n = size[0] * size[1] * size[2];
  // class 1 is the membrane (the import maps mask value 0 to it), class 0 the cells
  const membrane = Float32Array.from((pred.probabilities!.data as Float32Array).subarray(n, 2 * n));
  const referenceCells = instancesOfClass(ref.data, size, 0);
  let t0 = performance.now();
  // the same input as the peer's: the pixels with membrane probability < 0.5 (not the post-processed label map)
  const cellPixels = new Uint8Array(n);
  for (let i = 0; i < n; i++) cellPixels[i] = membrane[i]! < 0.5 ? 1 : 0;
  const components = instancesOfClass(cellPixels, size, 1);
  const componentSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const cells = cellsFromBoundaries(membrane, size, { seedBelow: SEED_BELOW, maskBelow: 0.5 });
  const watershedSeconds = (performance.now() - t0) / 1000;
  const c: InstanceCase = {
    id,
    shape: [size[1], size[0]],
    probability: join(dir, `${id}-membrane.f32`),
    reference: join(dir, `${id}-reference.i32`),
    referenceCells: referenceCells,
    medseg: {
      'medseg components': { labels: components, seconds: componentSeconds, path: join(dir, `${id}-medseg-components.i32`) },
      'medseg watershed': { labels: cells, seconds: watershedSeconds, path: join(dir, `${id}-medseg-watershed.i32`) },
    },
  };
  writeFileSync(c.probability, membrane);
  writeFileSync(c.reference, referenceCells);
  for (const m of Object.values(c.medseg)) writeFileSync(m.path, m.labels);
  return c;
}

interface PeerCase {
  id: string;
  seconds: { components: number; watershed: number };
  labels: Record<string, string>;
  vRand: Record<string, number>;
}

/** Scores medseg's and scikit-image's cell maps of every test slice with medseg's metrics; means over the slices. */
function scoreInstances(cases: InstanceCase[], dir: string) {
  const job = {
    seedBelow: SEED_BELOW,
    out: dir,
    cases: cases.map((c) => ({
      id: c.id,
      shape: c.shape,
      probability: c.probability,
      reference: c.reference,
      medseg: Object.fromEntries(Object.entries(c.medseg).map(([name, m]) => [name, m.path])),
    })),
  };
  const run = spawnSync(PYTHON, [join(here, 'py', 'instances_peer.py')], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`instances_peer.py failed: ${run.stderr}`);
  const peer = JSON.parse(run.stdout) as { versions: Record<string, string>; cases: PeerCase[] };
  const names = ['medseg components', 'medseg watershed', 'skimage components', 'skimage watershed'];
  const rows = new Map(names.map((name) => [name, [] as { vRand: number; vInfo: number; f1At50: number; meanAp: number; objects: number; seconds: number }[]]));
  let checkMax = 0;
  for (const c of cases) {
    const p = peer.cases.find((x) => x.id === c.id)!;
    for (const name of names) {
      const medseg = c.medseg[name];
      const labels = medseg ? medseg.labels : new Int32Array(readFileSync(p.labels[name]!).buffer.slice(0));
      const seconds = medseg ? medseg.seconds : name.endsWith('watershed') ? p.seconds.watershed : p.seconds.components;
      const official = randInfoScores(labels, c.referenceCells);
      checkMax = Math.max(checkMax, Math.abs(randInfoScores(labels, c.referenceCells, { pairs: 'distinct' }).vRand - p.vRand[name]!));
      const det = detectionScores(labels, c.referenceCells);
      rows.get(name)!.push({
        vRand: official.vRand,
        vInfo: official.vInfo,
        f1At50: det.perThreshold[0]!.f1,
        meanAp: det.meanAp,
        objects: new Set(labels).size - (labels.includes(0) ? 1 : 0),
        seconds,
      });
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const referenceObjects = mean(cases.map((c) => new Set(c.referenceCells).size - 1));
  return {
    protocol: `cells per test slice: 4-connected components of the pixels with membrane probability < 0.5, and marker watershed over the membrane probability (seeds <= ${SEED_BELOW}, flooding < 0.5, seedless regions kept); reference cells = components of the reference cell class; V_Rand and V_Info restricted to reference cells (ISBI 2012), all pixel pairs; means over the ${cases.length} test slices, times their median`,
    peer: { versions: peer.versions },
    referenceObjects,
    methods: names.map((name) => {
      const r = rows.get(name)!;
      return {
        name,
        vRand: mean(r.map((x) => x.vRand)),
        vInfo: mean(r.map((x) => x.vInfo)),
        f1At50: mean(r.map((x) => x.f1At50)),
        meanAp: mean(r.map((x) => x.meanAp)),
        objects: mean(r.map((x) => x.objects)),
        secondsMedian: median(r.map((x) => x.seconds)),
      };
    }),
    vRandCheckMaxDiff: checkMax,
  };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { minutes: { type: 'string', default: '10' }, out: { type: 'string' }, resume: { type: 'boolean', default: false }, ...LEVER_OPTIONS },
  });
  const { variant, flags, ...levers } = seg2dLevers(values);
  const out = values.out ?? join(repoRoot, `runs/bench-isbi${variant}`);
  const dataset = join(out, 'dataset');
  const ids = Array.from({ length: 30 }, (_, i) => String(i));
  // Membrane (0 in the masks) is the class scored: make it class 1, cell class 0.
  if (!existsSync(join(dataset, 'dataset.json')))
    await importIsbi2012(dataPath('isbi2012-em'), dataset, { labelMapping: { 255: 0, 0: 1 }, testIds: ids.slice(24) });
  const { training, test } = datasetCases(dataset);
  const loadBefore = loadavg();
  const instanceDir = join(out, 'instances');
  rmSync(instanceDir, { recursive: true, force: true });
  mkdirSync(instanceDir, { recursive: true });
  const instanceCases: InstanceCase[] = [];
  const r = await runSeg2d({
    out,
    dataset,
    train: ids.slice(0, 24),
    val: ids.slice(20, 24),
    test,
    minutes: Number(values.minutes),
    labels: [0, 1],
    checkpoint: 'final',
    resume: values.resume,
    ...levers,
    onPrediction: (c, pred, ref) => {
      instanceCases.push(writeInstanceInputs(instanceDir, c.id, pred, ref));
    },
  });
  const instances = scoreInstances(instanceCases, instanceDir);
  if (training.length !== 24 || test.length !== 6) throw new Error(`expected 24 training and 6 test slices, got ${training.length} / ${test.length}`);
  const result = {
    command: `npm run bench -- isbi --minutes ${values.minutes}${flags}`,
    skeleton_recall: levers.skeletonRecall ?? 0,
    average_weights_from: levers.averageWeights ?? null,
    average_lr: levers.averageLr ?? null,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
    protocol: 'train slices 0-23 (20-23 also scored per epoch, not held out), final weights, test 24-29; membrane = mask value 0',
    plan: planSummary(r.trained.plan),
    trainer: r.trained.folds[0]!.result,
    dice_membrane: r.mean(1, 'dice'),
    dice_cell: r.mean(0, 'dice'),
    train_minutes: r.trainMinutes,
    instances,
    per_case: r.perCase.map((p) => ({ id: p.id, dice_membrane: p.metrics[1]?.dice, dice_cell: p.metrics[0]?.dice })),
    // The same run's averaged weights on the same test slices (the final weights above are the comparison).
    ...(r.averaged
      ? {
          averaged: {
            epochs: r.trained.folds[0]!.result.averaged?.epochs,
            dice_membrane: r.averaged.mean(1, 'dice'),
            dice_cell: r.averaged.mean(0, 'dice'),
            per_case: r.averaged.perCase.map((p) => ({ id: p.id, dice_membrane: p.metrics[1]?.dice, dice_cell: p.metrics[0]?.dice })),
          },
        }
      : {}),
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, `results/isbi${variant}.json`), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify({ dice_membrane: result.dice_membrane, dice_cell: result.dice_cell, train_minutes: result.train_minutes }, null, 2));
  console.log(
    textTable(
      ['cells from', 'V_Rand', 'V_Info', 'F1 @ IoU 0.5', 'mean AP', 'objects / reference', 'ms per slice'],
      instances.methods.map((m) => [
        m.name,
        m.vRand.toFixed(4),
        m.vInfo.toFixed(4),
        m.f1At50.toFixed(3),
        m.meanAp.toFixed(3),
        `${m.objects.toFixed(0)} / ${instances.referenceObjects.toFixed(0)}`,
        (1000 * m.secondsMedian).toFixed(1),
      ]),
    ),
  );
  console.log(
    `medseg's V_Rand (distinct pairs) vs scikit-image's adapted_rand_error on the same label maps: max difference ${instances.vRandCheckMaxDiff.toExponential(2)}`,
  );
}
