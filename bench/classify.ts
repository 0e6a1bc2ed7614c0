/**
 * Classification on PneumoniaMNIST (paediatric chest X-rays, 28 px, binary):
 * medseg's classifiers against a PyTorch ResNet-18 (28) trained with the
 * MedMNIST v2 recipe (bench/py/classify_peer.py), each with the same
 * wall-clock budget on the same train/val/test splits in the same run, and the
 * MedMNIST v2 paper's published test-split numbers beside them. Test ACC is
 * the argmax's (as the paper reports it); medseg also reports ACC at its
 * operating point, sensitivity/specificity, balanced accuracy and ECE.
 * Writes bench/results/classify.json.
 *
 *   npm run bench -- classify [--minutes 10] [--archs resnet18,hybridnet,vit] [--limit N] [--tag NAME]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as torch from '../packages/torch/src/index.ts';
import { trainClassifierFromNpz, type ClassifierFolder } from '../packages/medseg/src/pipeline/classify.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { createProgress } from '../packages/medseg/src/util/progress.ts';
import { PYTHON } from './lib/peer.ts';
import { takeTag, writeResult } from './lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Test-split AUC and ACC on PneumoniaMNIST from Yang et al., "MedMNIST v2 - A
 * large-scale lightweight benchmark for 2D and 3D biomedical image
 * classification", Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8,
 * benchmark table of the 2D datasets (official train split of 4,708 images;
 * 100 epochs for the ResNets).
 */
const PUBLISHED = {
  source: 'Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8, 2D benchmark table, PneumoniaMNIST test split',
  results: [
    { method: 'ResNet-18 (28)', auc: 0.944, acc: 0.854 },
    { method: 'ResNet-18 (224)', auc: 0.956, acc: 0.864 },
    { method: 'ResNet-50 (28)', auc: 0.948, acc: 0.854 },
    { method: 'ResNet-50 (224)', auc: 0.962, acc: 0.884 },
    { method: 'auto-sklearn', auc: 0.942, acc: 0.855 },
    { method: 'AutoKeras', auc: 0.947, acc: 0.878 },
    { method: 'Google AutoML Vision', auc: 0.991, acc: 0.946 },
  ],
};

interface PeerResult {
  model: string;
  epochs: number;
  steps: number;
  minutes: number;
  secondsPerStep: number;
  trainCases: number;
  val: { auc: number; accuracy: number };
  test: { auc: number; accuracy: number };
}

function medsegRow(arch: string, f: ClassifierFolder) {
  const t = f.metrics.test!;
  return {
    method: `medseg ${arch}`,
    epochs: f.result.epochsRun,
    steps: f.result.iterations,
    bestEpoch: f.result.bestEpoch + 1,
    minutes: f.result.minutes,
    stepSeconds: f.stepSeconds,
    test: {
      auc: t.auc,
      acc: t.argmaxAccuracy,
      accAtThreshold: t.accuracy,
      balancedAccuracy: t.balancedAccuracy,
      sensitivity: t.operatingPoint?.sensitivity,
      specificity: t.operatingPoint?.specificity,
      ece: t.ece,
      eceScaled: t.eceScaled,
    },
    val: { auc: f.metrics.val.auc, acc: f.metrics.val.argmaxAccuracy },
    threshold: f.threshold,
    temperature: f.temperature,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { tag, rest } = takeTag(argv);
  const { values } = parseArgs({
    args: rest,
    options: {
      minutes: { type: 'string', default: '10' },
      archs: { type: 'string', default: 'resnet18' },
      limit: { type: 'string' },
      seed: { type: 'string', default: '0' },
    },
  });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) throw new Error('--minutes must be > 0');
  const limit = values.limit ? Number(values.limit) : undefined;
  const seed = Number(values.seed);
  const data = dataPath('pneumoniamnist', 'pneumoniamnist.npz');
  const loadBefore = loadavg();
  const work = mkdtempSync(join(tmpdir(), 'medseg-bench-classify-'));
  const medseg = [];
  try {
    for (const arch of values.archs!.split(',').map((s) => s.trim())) {
      process.stderr.write(`medseg ${arch}: training for ${minutes} min\n`);
      const f = await trainClassifierFromNpz({ data, outDir: join(work, arch), architecture: arch, minutes, limit, seed, progress: createProgress('auto') });
      medseg.push(medsegRow(arch, f));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.stderr.write(`PyTorch ResNet-18 (28): training for ${minutes} min\n`);
  const args = [join(here, 'py', 'classify_peer.py'), data, '--minutes', String(minutes), '--seed', String(seed), '--threads', String(torch.getNumThreads())];
  if (limit) args.push('--limit', String(limit));
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 26, timeout: (minutes * 60 * 2 + 300) * 1000 });
  if (r.status !== 0) throw new Error(`classify_peer.py failed (${r.status ?? r.signal}):\n${r.stderr}`);
  const peer = JSON.parse(r.stdout) as PeerResult;
  const rows = [
    ...medseg.map((m) => [m.method, m.test.auc, m.test.acc, m.epochs]),
    [`PyTorch ${peer.model}`, peer.test.auc, peer.test.accuracy, peer.epochs],
    ...PUBLISHED.results.map((p) => [`published ${p.method}`, p.auc, p.acc, p.method.startsWith('ResNet') ? '100' : '']),
  ];
  process.stdout.write(`PneumoniaMNIST test split, ${minutes} min budget each${limit ? ` (limit ${limit} per split)` : ''}\n`);
  process.stdout.write(`${'method'.padEnd(44)} ${'AUC'.padStart(6)} ${'ACC'.padStart(6)} epochs\n`);
  for (const [m, auc, acc, ep] of rows)
    process.stdout.write(`${String(m).padEnd(44)} ${Number(auc).toFixed(3).padStart(6)} ${Number(acc).toFixed(3).padStart(6)} ${ep}\n`);
  // Seconds per training step (batch 128, forward + backward + optimizer) of medseg's ResNet-18 over PyTorch's: > 1 means medseg is slower.
  const resnet = medseg.find((m) => m.method === 'medseg resnet18');
  const stepTimeRatioResnet18 = resnet?.stepSeconds ? resnet.stepSeconds / peer.secondsPerStep : null;
  if (stepTimeRatioResnet18) process.stdout.write(`ResNet-18 training step: medseg / PyTorch = ${stepTimeRatioResnet18.toFixed(2)}\n`);
  const path = writeResult(
    'classify',
    argv,
    {
      data: { file: 'pneumoniamnist/pneumoniamnist.npz', limitPerSplit: limit ?? null, trainCases: peer.trainCases },
      budgetMinutes: minutes,
      threads: torch.getNumThreads(),
      medseg,
      pytorch: { ...peer, log: undefined },
      stepTimeRatioResnet18,
      published: PUBLISHED,
      loadavgAfter: loadavg(),
    },
    loadBefore,
    tag,
  );
  process.stderr.write(`wrote ${path}\n`);
}
