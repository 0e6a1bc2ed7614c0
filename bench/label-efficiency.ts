/**
 * Label efficiency: what semi-supervised training and self-supervised
 * pretraining buy over training from scratch when only part of the training cases are labelled, at the same
 * total CPU budget per run.
 *
 * For each dataset (MSD hippocampus 3D, DRIVE 2D) and each labelled share
 * (10 %, 25 %, 100 % of the training pool, a seeded draw, at least one
 * case), every method trains one model with the same plan (planned once per
 * dataset for the budget) and the same model-selection cases:
 * - scratch: the labelled cases only;
 * - mean-teacher, pseudo-label: the labelled cases plus the rest of the pool
 *   as unlabelled cases (their labels set aside); at 100 % the labelled
 *   cases also serve as the unlabelled ones;
 * - pretrain: masked-image-modelling pretraining (`medseg pretrain`) on the
 *   whole pool's images for --pretrain-share of the budget, then fine-tuning
 *   from the pretrained encoder on the labelled cases for the rest;
 * - synthetic: the pix2pix GAN (`medseg synthesize`) trained on the labelled
 *   pairs only for --gan-share of the budget, as many synthetic pairs as the
 *   pool has cases generated from their varied masks, then training on the
 *   labelled cases with synthetic ones drawn at --synthetic-ratio for the rest
 *   (GAN training and generation counted in the budget).
 * Cases: hippocampus, the fixed split's 140 training cases (5 for model
 * selection, 135 as the pool) and its 34 validation cases as the test set
 * (demo/hippocampus-split.ts); DRIVE, 16 training images as the pool, 4 for
 * model selection, its 20 test images inside the field of view. Per method: mean per-case Dice (mean over classes) with a bootstrap
 * 95 % CI; per method vs scratch: Wilcoxon signed-rank on the paired
 * per-case Dice, Holm-adjusted over the methods of one dataset and share.
 * Writes bench/results/label-efficiency.json (or -<tag>.json with --tag).
 * Each finished run keeps its result in <out>/<dataset>/<budget>min/labels-<share>/<method>/run.json,
 * so an interrupted bench continues where it stopped. Every run's model card
 * gets the share's comparison (each method against scratch), so a model
 * trained by a method that lost says so where the model is used.
 *
 *   npm run bench -- label-efficiency [--budget 10] [--datasets hippocampus,drive] [--fractions 0.1,0.25,1]
 *     [--methods scratch,mean-teacher,pseudo-label,pretrain,synthetic] [--test-cases N] [--pretrain-share 0.3]
 *     [--gan-share 0.3] [--synthetic-ratio 0.5] [--out runs/bench-label-efficiency] [--tag NAME]
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { endingOf, readDataset, type DatasetCase } from '../packages/medseg/src/data/dataset.ts';
import { importDrive, importMsdHippocampus } from '../packages/medseg/src/data/import.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { comparePaired, holmAdjust } from '../packages/medseg/src/eval/statistics/paired.ts';
import type { MetricRow } from '../packages/medseg/src/eval/statistics/rows.ts';
import { bootstrapMeanCI } from '../packages/medseg/src/eval/statistics/summary.ts';
import { planDataset } from '../packages/medseg/src/pipeline/plan-dataset.ts';
import { pretrainModel } from '../packages/medseg/src/pipeline/pretrain.ts';
import { synthesizePairs } from '../packages/medseg/src/pipeline/synthesize.ts';
import { addSectionToModelCard } from '../packages/medseg/src/eval/report/modelcard.ts';
import { modelCardPaths } from '../packages/medseg/src/plan/model-folder.ts';
import type { Plan } from '../packages/medseg/src/plan/types.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { Rng } from '../packages/medseg/src/util/random.ts';
import { benchCommand, takeTag, writeResult } from './lib/report.ts';
import { planSummary, runSeg2d, type Seg2dRun } from './lib/seg2d.ts';

type Method = 'scratch' | 'mean-teacher' | 'pseudo-label' | 'pretrain' | 'synthetic';
const METHODS: Method[] = ['scratch', 'mean-teacher', 'pseudo-label', 'pretrain', 'synthetic'];

interface DatasetSetup {
  name: 'hippocampus' | 'drive';
  dir: string;
  /** Cases to draw the labelled share from (the rest are unlabelled). */
  pool: string[];
  /** Model selection during training. */
  val: string[];
  test: DatasetCase[];
  labels: number[];
}

interface RunResult {
  method: Method;
  /** Training minutes (the trainer's, within the budget; pretraining included). */
  minutes: number;
  /** Wall minutes of the whole run: training, final validation, calibration, test predictions. */
  wallMinutes: number;
  epochs: number;
  /** Per test case: mean Dice over the labels. */
  perCase: { id: string; dice: number }[];
  note?: string;
}

/**
 * The 'pretrain' method's first stage: masked-image-modelling pretraining
 * (pipeline/pretrain.ts) of the plan's network on the images of the whole
 * pool, labelled or not (a folder of links to them, so the held-out cases'
 * images stay out of pretraining), for `minutes`.
 */
async function pretrainOnPool(d: DatasetSetup, plan: Plan, out: string, minutes: number): Promise<{ dir: string; minutes: number }> {
  const images = join(out, 'pool-images');
  rmSync(images, { recursive: true, force: true });
  mkdirSync(images, { recursive: true });
  const byId = new Map(readDataset(d.dir).training.map((c) => [c.id, c]));
  for (const id of d.pool) {
    const paths = byId.get(id)!.imagePaths;
    paths.forEach((path, c) => {
      const name = paths.length > 1 ? `${id}_${String(c).padStart(4, '0')}` : id;
      symlinkSync(resolve(path), join(images, `${name}${endingOf(path)!}`));
    });
  }
  const p = await pretrainModel({ images, out: join(out, 'pretrained'), method: 'mim', plan, minutes });
  return { dir: p.dir, minutes: p.result.seconds / 60 };
}

/**
 * The 'synthetic' method's first stage: the mask -> image GAN trained on the
 * labelled pairs only for `minutes`, then `count` synthetic pairs written to
 * <out>/synthetic (no fidelity report: it is not part of the method, and its
 * classifier and synthetic-only model would spend the budget). The minutes
 * returned are the whole stage's wall time. An interrupted run keeps the
 * pairs it made (synthetic-stage.json), so its resumed training sees the same ones.
 */
async function synthesizeFromLabelled(
  d: DatasetSetup,
  plan: Plan,
  labelled: string[],
  out: string,
  minutes: number,
  count: number,
): Promise<{ dir: string; minutes: number; steps: number }> {
  const dir = join(out, 'synthetic');
  const stage = join(out, 'synthetic-stage.json');
  if (existsSync(stage)) return JSON.parse(readFileSync(stage, 'utf8')) as { dir: string; minutes: number; steps: number };
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  const r = await synthesizePairs({ dataset: d.dir, out: dir, plan, caseIds: labelled, minutes, count, fidelity: false, log: () => {} });
  const done = { dir, minutes: (Date.now() - t0) / 60000, steps: r.gan.steps };
  writeFileSync(stage, `${JSON.stringify(done, null, 2)}\n`);
  return done;
}

async function setup(name: string, out: string, testCases: number): Promise<DatasetSetup> {
  if (name === 'hippocampus') {
    const dir = join(out, 'hippocampus', 'dataset');
    if (!existsSync(join(dir, 'dataset.json'))) await importMsdHippocampus(dataPath('msd-hippocampus'), dir);
    const ds = readDataset(dir);
    const testIds = new Set(HIPPOCAMPUS_SPLIT.validation.slice(0, testCases));
    const train = HIPPOCAMPUS_SPLIT.train;
    return { name, dir, pool: train.slice(5), val: train.slice(0, 5), test: ds.training.filter((c) => testIds.has(c.id)), labels: [1, 2] };
  }
  if (name === 'drive') {
    const dir = join(out, 'drive', 'dataset');
    if (!existsSync(join(dir, 'dataset.json'))) await importDrive(dataPath('drive'), dir);
    const ds = readDataset(dir);
    const ids = ds.training.map((c) => c.id).sort();
    return { name, dir, pool: ids.slice(0, 16), val: ids.slice(16), test: ds.test.slice(0, testCases), labels: [1] };
  }
  throw new Error(`unknown dataset '${name}': hippocampus or drive`);
}

/** A seeded draw of max(1, round(share * n)) cases of the pool. */
function labelledShare(pool: string[], share: number, seed: number): string[] {
  const rng = new Rng(seed);
  const ids = [...pool];
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, Math.max(1, Math.round(share * ids.length))).sort();
}

/** One method's run folder. The budget is part of it: a finished run stands for its budget only. */
function runDir(out: string, dataset: string, budget: number, share: number, method: Method): string {
  return join(out, dataset, `${budget}min`, `labels-${Math.round(share * 100)}`, method);
}

async function runMethod(
  d: DatasetSetup,
  plan: Plan,
  share: number,
  method: Method,
  o: { out: string; budget: number; pretrainShare: number; ganShare: number; syntheticRatio: number },
): Promise<RunResult> {
  const dir = runDir(o.out, d.name, o.budget, share, method);
  const saved = join(dir, 'run.json');
  if (existsSync(saved)) return JSON.parse(readFileSync(saved, 'utf8')) as RunResult;
  mkdirSync(dir, { recursive: true });
  const labelled = labelledShare(d.pool, share, 12345);
  const rest = d.pool.filter((id) => !labelled.includes(id));
  const base: Seg2dRun = {
    out: dir,
    dataset: d.dir,
    train: labelled,
    val: d.val,
    test: d.test,
    minutes: o.budget,
    plan,
    labels: d.labels,
    tta: false,
    faithfulness: false,
    // A run without run.json was interrupted: continue it.
    resume: true,
  };
  let run: Seg2dRun = base;
  let note: string | undefined;
  let extraMinutes = 0;
  if (method === 'mean-teacher' || method === 'pseudo-label') {
    run = { ...base, semi: { method, unlabelled: { datasetIds: rest.length ? rest : labelled } } };
    if (!rest.length) note = 'every pool case is labelled: the labelled cases also serve as the unlabelled ones';
  } else if (method === 'pretrain') {
    const p = await pretrainOnPool(d, plan, dir, o.budget * o.pretrainShare);
    extraMinutes = p.minutes;
    const left = Math.max(0.1, o.budget - p.minutes);
    run = { ...base, minutes: left, plan: { ...plan, training: { ...plan.training, timeBudgetMinutes: left } }, init: { source: p.dir, part: 'encoder' } };
    note = `pretrained ${p.minutes.toFixed(1)} min on ${d.pool.length} cases, fine-tuned ${left.toFixed(1)} min`;
  } else if (method === 'synthetic') {
    const g = await synthesizeFromLabelled(d, plan, labelled, dir, o.budget * o.ganShare, d.pool.length);
    extraMinutes = g.minutes;
    const left = Math.max(0.1, o.budget - g.minutes);
    run = {
      ...base,
      minutes: left,
      plan: { ...plan, training: { ...plan.training, timeBudgetMinutes: left } },
      synthetic: { dir: g.dir, ratio: o.syntheticRatio },
    };
    note =
      `GAN ${g.minutes.toFixed(1)} min (${g.steps} steps) on the ${labelled.length} labelled pairs, ${d.pool.length} SYNTHETIC pairs ` +
      `drawn at ratio ${o.syntheticRatio}, trained ${left.toFixed(1)} min`;
  }
  const r = await runSeg2d(run);
  const result: RunResult = {
    method,
    minutes: r.trained.folds[0]!.result.minutes + extraMinutes,
    wallMinutes: r.trainMinutes + extraMinutes,
    epochs: r.trained.folds[0]!.result.epochsRun,
    perCase: r.perCase.map((p) => ({ id: p.id, dice: mean(d.labels.map((l) => p.metrics[l]?.dice ?? Number.NaN)) })),
    ...(note ? { note } : {}),
  };
  writeFileSync(saved, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function mean(v: number[]): number {
  const f = v.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : Number.NaN;
}

/** Mean Dice with its bootstrap CI per method, and each method against scratch (Wilcoxon, Holm-adjusted). */
function compare(runs: RunResult[]) {
  const done = runs.filter((r) => r.perCase.length);
  const rows: MetricRow[] = done.flatMap((r) => r.perCase.map((p) => ({ model: r.method, case: p.id, label: 'mean', dice: p.dice })));
  const summary = done.map((r) => {
    const v = r.perCase.map((p) => p.dice).filter(Number.isFinite);
    return {
      method: r.method,
      meanDice: mean(v),
      ci95: bootstrapMeanCI(v),
      cases: v.length,
      minutes: r.minutes,
      wallMinutes: r.wallMinutes,
      epochs: r.epochs,
      ...(r.note ? { note: r.note } : {}),
    };
  });
  const others = done.filter((r) => r.method !== 'scratch');
  const scratch = done.find((r) => r.method === 'scratch');
  const tests = scratch ? others.map((r) => comparePaired(rows, r.method, 'scratch', 'mean', 'dice')) : [];
  const adjusted = holmAdjust(tests.map((t) => t.wilcoxon.pValue));
  const vsScratch = tests.map((t, i) => ({
    method: t.modelA,
    meanDifference: t.meanDifference,
    medianDifference: t.medianDifference,
    cases: t.nCases,
    p: t.wilcoxon.pValue,
    rankBiserial: t.wilcoxon.rankBiserial,
    pHolm: adjusted[i],
  }));
  const skipped = runs.filter((r) => !r.perCase.length).map((r) => ({ method: r.method, note: r.note }));
  return { summary, vsScratch, skipped };
}

/** The model card's section: every method of the share against scratch, this card's method marked. */
function labelEfficiencySection(method: Method, context: string, c: ReturnType<typeof compare>): string[] {
  const vs = new Map(c.vsScratch.map((v) => [v.method, v]));
  const verdict = (m: string): string => {
    const v = vs.get(m);
    if (!v) return m === 'scratch' ? 'the reference' : 'n/a';
    const p = v.pHolm ?? v.p;
    const sign = v.meanDifference >= 0 ? '+' : '';
    const word = p < 0.05 ? (v.meanDifference < 0 ? 'worse than scratch' : 'better than scratch') : 'not different from scratch';
    return `${sign}${v.meanDifference.toFixed(3)} (Holm p ${p < 0.001 ? '< 0.001' : p.toFixed(3)}): ${word}`;
  };
  return [
    '## Label efficiency',
    '',
    `This model was trained by the method \`${method}\` in the label-efficiency bench: ${context}. Every method had the same plan, budget (pretraining and GAN time counted), model-selection and test cases; test Dice per case without TTA, each method against training from scratch by a paired Wilcoxon test.`,
    '',
    '| method | mean Dice | 95 % CI | epochs | vs scratch |',
    '|---|---:|---|---:|---|',
    ...c.summary.map(
      (r) =>
        `| ${r.method === method ? `**${r.method}** (this model)` : r.method} | ${r.meanDice.toFixed(3)} | ${r.ci95.lower.toFixed(3)}–${r.ci95.upper.toFixed(3)} | ${r.epochs} | ${verdict(r.method)} |`,
    ),
  ];
}

export async function main(argv: string[]): Promise<void> {
  const { tag, rest: args } = takeTag(argv);
  const { values } = parseArgs({
    args,
    options: {
      budget: { type: 'string', default: '10' },
      datasets: { type: 'string', default: 'hippocampus,drive' },
      fractions: { type: 'string', default: '0.1,0.25,1' },
      methods: { type: 'string', default: METHODS.join(',') },
      'test-cases': { type: 'string', default: '1000' },
      'pretrain-share': { type: 'string', default: '0.3' },
      'gan-share': { type: 'string', default: '0.3' },
      'synthetic-ratio': { type: 'string', default: '0.5' },
      out: { type: 'string', default: join(repoRoot, 'runs/bench-label-efficiency') },
    },
  });
  const budget = Number(values.budget);
  if (!(budget > 0)) throw new Error('--budget must be a number of minutes > 0 (the CPU budget of every run)');
  const fractions = values.fractions!.split(',').map(Number);
  if (!fractions.every((f) => f > 0 && f <= 1)) throw new Error('--fractions must be shares in (0, 1]');
  for (const k of ['pretrain-share', 'gan-share'] as const) {
    const v = Number(values[k]);
    if (!(v > 0 && v < 1)) throw new Error(`--${k} must be a share of the budget in (0, 1)`);
  }
  const ratio = Number(values['synthetic-ratio']);
  if (!(ratio > 0 && ratio <= 1)) throw new Error('--synthetic-ratio must be a share of training draws in (0, 1]');
  const methods = values.methods!.split(',') as Method[];
  const unknown = methods.find((m) => !METHODS.includes(m));
  if (unknown) throw new Error(`unknown method '${unknown}': ${METHODS.join(', ')}`);
  const out = values.out!;
  const loadBefore = loadavg();
  const t0 = Date.now();
  const datasets = [];
  for (const name of values.datasets!.split(',')) {
    const d = await setup(name, out, Number(values['test-cases']));
    // One plan per dataset for every method and share, planned for the budget (its time budget ends every run).
    const planned = await planDataset({ dataset: d.dir, choices: { minutes: budget }, out: null });
    // No TTA in model selection and final validation either: the test predictions use none, and 8 mirrored passes per validation case would dominate short runs.
    const plan: Plan = { ...planned.plan, inference: { ...planned.plan.inference, mirror: false, transpose: false } };
    const shares = [];
    for (const share of fractions) {
      const runs: RunResult[] = [];
      for (const m of methods) {
        runs.push(
          await runMethod(d, plan, share, m, {
            out,
            budget,
            pretrainShare: Number(values['pretrain-share']),
            ganShare: Number(values['gan-share']),
            syntheticRatio: Number(values['synthetic-ratio']),
          }),
        );
        const last = runs[runs.length - 1]!;
        console.log(
          `${d.name} ${Math.round(share * 100)} % labels, ${m}: ${last.perCase.length ? `Dice ${mean(last.perCase.map((p) => p.dice)).toFixed(4)}` : last.note}`,
        );
      }
      const compared = compare(runs);
      const labelledCases = labelledShare(d.pool, share, 12345).length;
      const context = `${d.name}, ${labelledCases} of ${d.pool.length} training cases labelled, ${budget} minutes a run, ${d.test.length} test cases (\`${benchCommand('label-efficiency', argv)}\`)`;
      for (const m of methods) {
        const card = modelCardPaths(join(runDir(out, d.name, budget, share, m), 'model'));
        if (!existsSync(card.markdown)) continue;
        addSectionToModelCard(card, '## Label efficiency', labelEfficiencySection(m, context, compared), 'labelEfficiency', {
          method: m,
          context,
          ...compared,
        });
      }
      shares.push({ labelledShare: share, labelledCases, poolCases: d.pool.length, ...compared });
    }
    datasets.push({ dataset: d.name, plan: planSummary(plan), validationCases: d.val.length, testCases: d.test.length, shares });
  }
  const path = writeResult(
    'label-efficiency',
    argv,
    {
      budgetMinutesPerRun: budget,
      protocol:
        'per dataset one plan for the budget; per labelled share a seeded draw of the training pool; every method trains within the same budget (pretraining and GAN time counted; the GAN learns the labelled pairs only); ' +
        'test Dice per case (mean over classes, no TTA, validation without TTA too); bootstrap 95 % CI of the mean; Wilcoxon signed-rank vs scratch on paired cases, Holm-adjusted per dataset and share',
      datasets,
      totalMinutes: (Date.now() - t0) / 60000,
    },
    loadBefore,
    tag,
  );
  console.log(`wrote ${path}`);
}
