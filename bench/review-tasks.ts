/**
 * The review's tasks beyond segmentation, each against its peer, in one run:
 * classification (bench/classify.ts: PneumoniaMNIST against a PyTorch
 * ResNet-18 and the MedMNIST v2 table), registration (bench/register.ts:
 * hippocampus atlas-to-subject against elastix), denoising and through-plane
 * super-resolution (bench/enhance.ts: against scikit-image and SciPy) and
 * instance-level results (bench/isbi.ts: ISBI 2012 EM cells against
 * scikit-image's watershed). Each bench runs in turn and writes its own JSON
 * (with its per-case numbers); review-tasks.json gathers their headline
 * figures, peers beside medseg, with each bench's date and load.
 *
 *   npm run bench -- review-tasks [--classify-minutes 3] [--enhance-minutes 3] [--isbi-minutes 10] [--register-train-seconds 300]
 *     [--only classify,register,enhance,isbi]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeResult } from './lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** A bench JSON read back for its headline figures; its shape is its writer's (bench/<name>.ts). */
type Json = Record<string, any>;

const TASKS = ['classify', 'register', 'enhance', 'isbi'] as const;
type Task = (typeof TASKS)[number];

function readResult(name: string): Json {
  return JSON.parse(readFileSync(join(here, 'results', `${name}.json`), 'utf8')) as Json;
}

function provenance(r: Json) {
  return {
    command: r.command,
    date: r.date,
    loadavgBefore: r.machine?.loadavgBefore ?? r.machine?.loadavg ?? null,
    loadavgAfter: r.loadavgAfter ?? r.machine?.loadavgAfter ?? null,
  };
}

function classification(r: Json) {
  return {
    ...provenance(r),
    data: 'PneumoniaMNIST test split (624 images)',
    budgetMinutes: r.budgetMinutes,
    rows: [
      ...(r.medseg as Json[]).map((m) => ({ method: m.method, auc: m.test.auc, acc: m.test.acc, balancedAccuracy: m.test.balancedAccuracy, epochs: m.epochs })),
      { method: `PyTorch ${r.pytorch.model}`, auc: r.pytorch.test.auc, acc: r.pytorch.test.accuracy, epochs: r.pytorch.epochs },
    ],
    published: r.published,
    stepTimeRatioResnet18: r.stepTimeRatioResnet18,
  };
}

function registration(r: Json) {
  return {
    ...provenance(r),
    data: `MSD hippocampus, atlas ${r.atlas} to ${r.subjects.length} validation subjects`,
    rows: Object.entries(r.summary as Record<string, Json>).map(([method, s]) => ({
      method,
      diceAnteriorPosterior: s.diceMean,
      hd95AnteriorPosteriorMm: s.hd95Mean,
      foldingFraction: s.foldingMean,
      secondsPerPair: s.secondsMedian,
    })),
  };
}

function enhancement(r: Json) {
  return {
    ...provenance(r),
    data: `MSD hippocampus, ${r.split.scored.length} validation volumes`,
    minutesPerModel: r.settings.minutesPerModel,
    rows: r.summary as Json[],
  };
}

function instances(r: Json) {
  return {
    ...provenance(r),
    data: 'ISBI 2012 EM, test slices 24-29',
    trainMinutes: r.train_minutes,
    diceMembrane: r.dice_membrane,
    protocol: r.instances.protocol,
    referenceObjects: r.instances.referenceObjects,
    rows: r.instances.methods,
    vRandCheckMaxDiff: r.instances.vRandCheckMaxDiff,
    peer: r.instances.peer,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'classify-minutes': { type: 'string', default: '3' },
      'enhance-minutes': { type: 'string', default: '3' },
      'isbi-minutes': { type: 'string', default: '10' },
      'register-train-seconds': { type: 'string', default: '300' },
      only: { type: 'string', default: TASKS.join(',') },
    },
  });
  const only = new Set(values.only!.split(',').map((s) => s.trim()));
  for (const t of only) if (!TASKS.includes(t as Task)) throw new Error(`unknown task '${t}': ${TASKS.join(', ')}`);
  const args: Record<Task, string[]> = {
    classify: ['--minutes', values['classify-minutes']!],
    register: ['--train-seconds', values['register-train-seconds']!],
    enhance: ['--minutes', values['enhance-minutes']!],
    isbi: ['--minutes', values['isbi-minutes']!],
  };
  const loadBefore = loadavg();
  for (const t of TASKS) {
    if (!only.has(t)) continue;
    process.stderr.write(`\n=== review-tasks: ${t} ${args[t].join(' ')} ===\n`);
    const mod = (await import(`./${t}.ts`)) as { main: (a: string[]) => Promise<void> };
    await mod.main(args[t]);
  }
  // Tasks left out of this run keep their last result, marked as such.
  const gathered = {
    classification: { ...classification(readResult('classify')), thisRun: only.has('classify') },
    registration: { ...registration(readResult('register')), thisRun: only.has('register') },
    enhancement: { ...enhancement(readResult('enhance')), thisRun: only.has('enhance') },
    instances: { ...instances(readResult('isbi')), thisRun: only.has('isbi') },
  };
  const path = writeResult('review-tasks', argv, gathered, loadBefore);
  process.stdout.write(`wrote ${path}\n`);
}
