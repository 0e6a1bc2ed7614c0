/**
 * Deployment engines on trained models, in one run on one machine: the
 * hippocampus 3D U-Net, the DRIVE 2D U-Net and HybridNet on hippocampus.
 * For each model:
 * - per network pass (one patch of the plan's size, at the batch the
 *   sliding window runs with the plan's TTA, and at batch 1), median over
 *   rounds that rotate through every engine: libtorch fp32 (and bf16 when
 *   the plan predicts in bf16), libtorch on the pruned network,
 *   onnxruntime fp32, int8 (static QDQ), pruned, int8+pruned, and PyTorch
 *   eager fp32 on the same weights (bench/py/models_peer.py loads the
 *   model's safetensors) with glibc malloc, jemalloc and tcmalloc;
 * - per case end to end (read, preprocess, predict, write the label map)
 *   for every engine and TTA level the plan allows (its default; in 2D
 *   mirroring without the transposes; none), each held-out case once per
 *   setting after one untimed warm-up case, cases outermost so every setting
 *   sees the same machine; Dice per setting on the held-out cases
 *   (hippocampus: the 34 validation cases of demo/hippocampus-split.ts;
 *   DRIVE: the 20 test images inside their field-of-view masks, as
 *   bench/drive.ts scores them);
 * - sizes on disk, the logits' agreement between libtorch, onnxruntime and
 *   PyTorch, and the goals: int8 >= 2.5x PyTorch fp32 (the faster tuned
 *   allocator) per pass at a Dice loss <= 0.005, and a hippocampus case end
 *   to end in <= 0.25 s with some engine and TTA level (the fastest setting
 *   and its Dice cost against libtorch at the plan's precision and TTA).
 * The compressed variants are made in bench/lib/deploy-variants.ts. A model
 * folder that does not exist is trained first, as the accuracy benches do
 * (`npm run bench -- hippocampus|drive --minutes M --out DIR/..`).
 *
 *   npm run bench -- deploy [--hippocampus-model DIR] [--drive-model DIR] [--hybrid-model DIR]
 *       [--only hippocampus-unet,drive-unet,hippocampus-hybridnet] [--cases N] [--rounds 3] [--reps 2]
 *       [--minutes 10] [--quick]
 * (--quick: 2 cases per model, 1 round of 1 pass, written to bench/results/deploy-quick.json;
 *  --cases N: the first N held-out cases only, written to deploy-cases<N>.json)
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { importDrive, importMsdHippocampus } from '../packages/medseg/src/data/import.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { centrePatch } from '../packages/medseg/src/deploy/compress-model.ts';
import { OnnxNetwork } from '../packages/medseg/src/deploy/onnx-engine.ts';
import type { PruneSummary } from '../packages/medseg/src/deploy/prune.ts';
import { evaluateCase } from '../packages/medseg/src/eval/metrics.ts';
import { defaultOutputFormat } from '../packages/medseg/src/infer/output-format.ts';
import {
  disposeModel,
  loadModel,
  predictVolumes,
  prepareInput,
  readInputCase,
  writePrediction,
  type InputCase,
  type LoadedModel,
} from '../packages/medseg/src/infer/predict.ts';
import type { NetworkPass } from '../packages/medseg/src/infer/sliding-window.ts';
import { readVolume } from '../packages/medseg/src/io/read.ts';
import type { Volume } from '../packages/medseg/src/io/volume.ts';
import { countMACs, countParameters } from '../packages/medseg/src/models/registry.ts';
import { trainModel } from '../packages/medseg/src/pipeline/train-model.ts';
import { listFolds, weightsFile } from '../packages/medseg/src/plan/model-folder.ts';
import { saveWeights } from '../packages/medseg/src/plan/model-weights.ts';
import type { InferenceSettings, Plan } from '../packages/medseg/src/plan/types.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { calibrate, DEFAULT_VARIANTS, fp32Onnx, int8Onnx, pruneModel, type VariantSettings } from './lib/deploy-variants.ts';
import { PythonPeer } from './lib/peer.ts';
import { writeResult } from './lib/report.ts';
import { datasetCases } from './lib/seg2d.ts';
import { median, timeRepeated } from './lib/stats.ts';
import { tunedAllocators } from './lib/train-step.ts';

type ModelKey = 'hippocampus-unet' | 'drive-unet' | 'hippocampus-hybridnet';

interface ModelSpec {
  key: ModelKey;
  data: 'hippocampus' | 'drive';
  dir: string;
  architecture: string;
  /** Foreground labels scored (Dice averaged over them). */
  labels: number[];
}

interface HeldOutCase {
  id: string;
  image: string;
  label: string;
  region?: string;
}

interface Settings {
  cases: number;
  rounds: number;
  reps: number;
  minutes: number;
  variants: VariantSettings;
  threads: number;
}

/** Case goal of the issue: a hippocampus case end to end within this many seconds. */
const CASE_GOAL_S = 0.25;
const SPEEDUP_GOAL = 2.5;
const DICE_LOSS_GOAL = 0.005;
/** The sliding window's default cap on the voxels of one batch of mirrored tiles (infer/sliding-window.ts maxBatchVoxels). */
const MAX_BATCH_VOXELS = 2 ** 20;

// ---- models and cases ------------------------------------------------------------------

function hasModel(dir: string): boolean {
  try {
    return listFolds(dir).some((f) => weightsFile(f.dir) !== null);
  } catch {
    return false;
  }
}

/** The dataset folder beside the model folder (the accuracy benches import it there), imported when missing. */
async function ensureDataset(spec: ModelSpec): Promise<string> {
  const dataset = join(dirname(spec.dir), 'dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) {
    if (spec.data === 'hippocampus') await importMsdHippocampus(dataPath('msd-hippocampus'), dataset);
    else await importDrive(dataPath('drive'), dataset);
  }
  return dataset;
}

/** The split the accuracy benches train with: hippocampus's fixed split; DRIVE's first 16 training images, 4 for selection. */
function trainingSplit(spec: ModelSpec, dataset: string): { train: string[]; val: string[] } {
  if (spec.data === 'hippocampus') return { train: HIPPOCAMPUS_SPLIT.train, val: HIPPOCAMPUS_SPLIT.validation };
  const ids = datasetCases(dataset)
    .training.map((c) => c.id)
    .sort();
  return { train: ids.slice(0, 16), val: ids.slice(16) };
}

async function ensureModel(spec: ModelSpec, minutes: number): Promise<void> {
  if (hasModel(spec.dir)) return;
  const dataset = await ensureDataset(spec);
  console.log(`no trained model at ${spec.dir}: training ${spec.architecture} on ${spec.data} for ${minutes} min first`);
  await trainModel({ dataset, out: spec.dir, split: trainingSplit(spec, dataset), minutes, architecture: spec.architecture });
}

function heldOutCases(spec: ModelSpec, dataset: string): HeldOutCase[] {
  if (spec.data === 'hippocampus') {
    const root = dataPath('msd-hippocampus');
    return HIPPOCAMPUS_SPLIT.validation.map((id) => ({ id, image: join(root, 'images', `${id}.nii.gz`), label: join(root, 'labels', `${id}.nii.gz`) }));
  }
  return datasetCases(dataset).test.map((c) => ({
    id: c.id,
    image: c.imagePaths[0]!,
    label: c.labelPath!,
    ...(c.regionMaskPath ? { region: c.regionMaskPath } : {}),
  }));
}

/**
 * The dataset whose first training cases calibrate int8. Hippocampus: a
 * dataset of the split's first training cases only (the imported dataset's
 * first cases include a validation case, which would leak into the Dice the
 * int8 model is scored on). DRIVE: its dataset (the training images come
 * before any test image).
 */
async function calibrationDataset(spec: ModelSpec, dataset: string, workDir: string, cases: number): Promise<string> {
  if (spec.data === 'drive') return dataset;
  const dir = join(workDir, `calibration-dataset-${cases}`);
  if (existsSync(join(dir, 'dataset.json'))) return dir;
  const src = join(workDir, 'calibration-source');
  rmSync(src, { recursive: true, force: true });
  const root = dataPath('msd-hippocampus');
  for (const sub of ['images', 'labels']) {
    mkdirSync(join(src, sub), { recursive: true });
    for (const id of HIPPOCAMPUS_SPLIT.train.slice(0, cases)) symlinkSync(join(root, sub, `${id}.nii.gz`), join(src, sub, `${id}.nii.gz`));
  }
  await importMsdHippocampus(src, dir);
  rmSync(src, { recursive: true, force: true });
  return dir;
}

// ---- engines ---------------------------------------------------------------------------

/** The model with other inference settings (precision, TTA): predictVolumes reads them from the plan. */
function withInference(m: LoadedModel, p: Partial<InferenceSettings>): LoadedModel {
  return { ...m, plan: { ...m.plan, inference: { ...m.plan.inference, ...p } } };
}

interface TtaLevel {
  name: string;
  passes: number;
  mirror: boolean;
  transpose: boolean;
  isDefault: boolean;
}

/** The plan's TTA, then mirroring without the 2D transposes where the plan has both, then none. */
function ttaLevels(plan: Plan): TtaLevel[] {
  const spatial = plan.patchSize.length;
  const { mirror, transpose } = plan.inference;
  const t = transpose && spatial === 2;
  const passes = (m: boolean, tr: boolean) => (m ? 2 ** spatial : 1) * (tr ? 2 : 1);
  const levels: TtaLevel[] = [
    { name: mirror && t ? 'full' : mirror ? 'mirror' : t ? 'transpose' : 'none', passes: passes(mirror, t), mirror, transpose: t, isDefault: true },
  ];
  if (mirror && t) levels.push({ name: 'mirror', passes: passes(true, false), mirror: true, transpose: false, isDefault: false });
  if (mirror || t) levels.push({ name: 'none', passes: 1, mirror: false, transpose: false, isDefault: false });
  return levels;
}

/** Batch of one network pass in the sliding window with the plan's TTA: the mirrored copies of a tile, capped by voxels. */
function predictedBatch(plan: Plan): number {
  const combos = plan.inference.mirror ? 2 ** plan.patchSize.length : 1;
  const voxels = plan.patchSize.reduce((a, b) => a * b, 1);
  return Math.max(1, Math.min(combos, Math.floor(MAX_BATCH_VOXELS / voxels)));
}

/** onnxruntime session options of the predictor's engine (deploy/onnx-engine.ts). */
function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** Something timed per network pass: returns each timed pass in ms. */
interface PassEngine {
  name: string;
  time(batch: number, reps: number, warmup: number): Promise<number[]>;
  dispose(): Promise<void> | void;
}

function torchPassEngine(name: string, net: NetworkPass, patch: Float32Array, dims: number[], bf16: boolean): PassEngine {
  const inputs = new Map<number, Tensor>();
  const input = (b: number) => {
    if (!inputs.has(b))
      inputs.set(
        b,
        torch.tidy(() =>
          torch.keep(
            torch
              .tensor(patch, dims)
              .expand([b, ...dims.slice(1)])
              .contiguous(),
          ),
        ),
      );
    return inputs.get(b)!;
  };
  const pass = (x: Tensor) =>
    torch.tidy(() => {
      torch.noGrad(() => (bf16 ? torch.autocast({ dtype: 'bfloat16' }, () => net.forward(x)) : net.forward(x)));
    });
  return {
    name,
    time: async (b, reps, warmup) => timeRepeated(() => pass(input(b)), reps, warmup),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

async function ortPassEngine(name: string, bytes: Uint8Array, patch: Float32Array, dims: number[], threads: number): Promise<PassEngine> {
  const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
  const feed = (b: number) => {
    const data = new Float32Array(patch.length * b);
    for (let i = 0; i < b; i++) data.set(patch, i * patch.length);
    return { image: new ort.Tensor('float32', data, [b, ...dims.slice(1)]) };
  };
  return {
    name,
    time: async (b, reps, warmup) => {
      const f = feed(b);
      for (let i = 0; i < warmup; i++) await session.run(f);
      const out: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await session.run(f);
        out.push(performance.now() - t0);
      }
      return out;
    },
    dispose: () => session.release(),
  };
}

interface Peer {
  name: string;
  peer: PythonPeer;
  ready: Record<string, unknown>;
}

/** PyTorch processes, one per allocator: glibc's, and the tuned ones installed here (jemalloc, tcmalloc). */
async function startPeers(threads: number): Promise<{ peers: Peer[]; missing: string[]; settings: Record<string, Record<string, string>> }> {
  const tuned = tunedAllocators();
  const sides = [{ name: 'pytorch', env: {} as Record<string, string> }, ...tuned.available];
  const peers: Peer[] = [];
  for (const s of sides) {
    const { peer, ready } = await PythonPeer.start('models_peer.py', ['--serve'], { ...s.env, PEER_THREADS: String(threads), OPENBLAS_NUM_THREADS: '1' });
    peers.push({ name: s.name, peer, ready });
  }
  return { peers, missing: tuned.missing, settings: tuned.settings };
}

function peerPassEngine(p: Peer, rawInput: string, dims: number[]): PassEngine {
  return {
    name: p.name,
    time: async (batch, reps, warmup) => (await p.peer.request<{ ms: number[] }>({ cmd: 'time', input: rawInput, shape: dims, batch, reps, warmup })).ms,
    dispose: () => {},
  };
}

// ---- measuring ---------------------------------------------------------------------------

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

const meanDice = (pred: Volume, ref: Volume, labels: number[], region?: Uint8Array): number => {
  const ev = evaluateCase(pred, ref, { labels, distances: false, ...(region ? { regionMask: region } : {}) });
  return ev.classes.reduce((s, m) => s + (m.dice as number), 0) / ev.classes.length;
};

const fmtEta = (s: number): string => (s >= 90 ? `${(s / 60).toFixed(1)} min` : `${Math.round(s)} s`);

interface CaseEngine {
  name: string;
  model: LoadedModel;
  networks?: NetworkPass[];
}

interface CaseRow {
  engine: string;
  tta: string;
  ttaPasses: number;
  isDefaultTta: boolean;
  median_s: number;
  mean_dice: number;
  worst_dice: number;
  seconds: number[];
  dice: number[];
}

async function measureModel(spec: ModelSpec, s: Settings, peers: Peer[]) {
  const dataset = await ensureDataset(spec);
  const workDir = join(dirname(spec.dir), 'deploy-bench');
  mkdirSync(workDir, { recursive: true });
  const fold = listFolds(spec.dir).find((f) => weightsFile(f.dir) !== null)!.fold;
  const model = loadModel(spec.dir, { folds: [fold] });
  const pruned = loadModel(spec.dir, { folds: [fold] });
  const disposers: (() => unknown)[] = [() => disposeModel(model), () => disposeModel(pruned)];
  try {
    const plan = model.plan;
    const precision = plan.inference.precision;
    const channels = plan.channels.length;
    const cases = heldOutCases(spec, dataset).slice(0, s.cases);
    const t0 = performance.now();

    // Variants: fp32 and int8 ONNX of the model, the pruned network, its fp32 and int8 ONNX.
    const calibDir = await calibrationDataset(spec, dataset, workDir, s.variants.calibrationCases);
    const calibration = await calibrate(model, calibDir, s.variants);
    const macsBefore = countMACs(model.nets[0]!, plan.patchSize);
    const paramsBefore = countParameters(model.nets[0]!, false);
    const prune = await pruneModel(pruned, s.variants, { dataset, ...trainingSplit(spec, dataset) });
    const pruning: PruneSummary = prune.summary;
    const bytes = {
      fp32: fp32Onnx(model, null),
      int8: await int8Onnx(model, calibration, s.variants, null),
      pruned: fp32Onnx(pruned, pruning),
      prunedInt8: await int8Onnx(pruned, calibration, s.variants, pruning),
    };
    const files = {
      fp32: join(workDir, 'model-fp32.onnx'),
      int8: join(workDir, 'model-int8.onnx'),
      pruned: join(workDir, 'model-pruned.onnx'),
      prunedInt8: join(workDir, 'model-pruned-int8.onnx'),
      prunedWeights: join(workDir, 'model-pruned.safetensors'),
    };
    for (const k of ['fp32', 'int8', 'pruned', 'prunedInt8'] as const) writeFileSync(files[k], bytes[k]);
    saveWeights(files.prunedWeights, pruned.nets[0]!.stateDict());
    const sizes = {
      safetensors_fp32: statSync(model.weights[0]!).size,
      safetensors_pruned: statSync(files.prunedWeights).size,
      onnx_fp32: statSync(files.fp32).size,
      onnx_int8: statSync(files.int8).size,
      onnx_pruned: statSync(files.pruned).size,
      onnx_pruned_int8: statSync(files.prunedInt8).size,
    };
    const prepSeconds = (performance.now() - t0) / 1000;
    console.log(
      `[${spec.key}] variants made in ${prepSeconds.toFixed(0)} s: ONNX fp32 ${(sizes.onnx_fp32 / 1e6).toFixed(2)} MB, int8 ${(sizes.onnx_int8 / 1e6).toFixed(2)} MB, ` +
        `pruned ${(sizes.onnx_pruned / 1e6).toFixed(2)} MB, pruned int8 ${(sizes.onnx_pruned_int8 / 1e6).toFixed(2)} MB`,
    );

    // One real patch: the centre of the first held-out case, preprocessed with the plan.
    const first = prepareInput(plan, await readInputCase(cases[0]!.image, channels)).case;
    const patch = centrePatch(first.data, first.channels, first.shape, plan.patchSize);
    const rawInput = join(workDir, 'patch.f32');
    writeFileSync(rawInput, Buffer.from(patch.data.buffer, patch.data.byteOffset, patch.data.byteLength));

    // Parity: the same patch through libtorch, onnxruntime and PyTorch.
    for (const p of peers) await p.peer.request({ cmd: 'load', network: plan.network, weights: resolve(model.weights[0]!) });
    const torchLogits = torch.tidy(() => {
      const out = torch.noGrad(() => model.nets[0]!.forward(torch.tensor(patch.data, patch.dims)));
      return (Array.isArray(out) ? out[0]! : out).toFloat32Array();
    });
    const ortLogits = async (b: Uint8Array) => {
      const session = await ort.InferenceSession.create(b, sessionOptions(s.threads));
      try {
        return (await session.run({ image: new ort.Tensor('float32', patch.data, patch.dims) })).logits!.data as Float32Array;
      } finally {
        await session.release();
      }
    };
    const pyOut = join(workDir, 'logits-pytorch.f32');
    await peers[0]!.peer.request({ cmd: 'forward', input: rawInput, shape: patch.dims, output: pyOut });
    const pyLogits = new Float32Array(new Uint8Array(readFileSync(pyOut)).buffer);
    const parity = {
      input: `centre patch of ${cases[0]!.id}, [${patch.dims.join(', ')}]`,
      onnx_fp32_vs_libtorch: maxAbsDiff(await ortLogits(bytes.fp32), torchLogits),
      pytorch_vs_libtorch: maxAbsDiff(pyLogits, torchLogits),
      onnx_int8_vs_libtorch: maxAbsDiff(await ortLogits(bytes.int8), torchLogits),
      logits_max_abs: torchLogits.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
    };
    console.log(
      `[${spec.key}] max |logit difference| vs libtorch: onnxruntime fp32 ${parity.onnx_fp32_vs_libtorch.toExponential(1)}, PyTorch ${parity.pytorch_vs_libtorch.toExponential(1)}, int8 ${parity.onnx_int8_vs_libtorch.toFixed(3)} (logits up to ${parity.logits_max_abs.toFixed(1)})`,
    );

    // Per network pass, rounds rotating through the engines.
    const batch = predictedBatch(plan);
    const batches = batch > 1 ? [batch, 1] : [1];
    const passEngines: PassEngine[] = [
      torchPassEngine('libtorch-fp32', model.nets[0]!, patch.data, patch.dims, false),
      ...(precision === 'bf16' ? [torchPassEngine('libtorch-bf16', model.nets[0]!, patch.data, patch.dims, true)] : []),
      torchPassEngine('libtorch-pruned-fp32', pruned.nets[0]!, patch.data, patch.dims, false),
      await ortPassEngine('onnx-fp32', bytes.fp32, patch.data, patch.dims, s.threads),
      await ortPassEngine('onnx-int8', bytes.int8, patch.data, patch.dims, s.threads),
      await ortPassEngine('onnx-pruned-fp32', bytes.pruned, patch.data, patch.dims, s.threads),
      await ortPassEngine('onnx-pruned-int8', bytes.prunedInt8, patch.data, patch.dims, s.threads),
      ...peers.map((p) => peerPassEngine(p, rawInput, patch.dims)),
    ];
    const passTimes = new Map<string, number[]>();
    const tp = performance.now();
    try {
      for (let r = 0; r < s.rounds; r++) {
        for (const b of batches) {
          for (const e of passEngines) {
            const key = `${e.name}@${b}`;
            passTimes.set(key, [...(passTimes.get(key) ?? []), ...(await e.time(b, s.reps, r === 0 ? 1 : 0))]);
          }
        }
        const done = (performance.now() - tp) / 1000;
        console.log(`[${spec.key}] pass round ${r + 1}/${s.rounds} done, ${fmtEta((done / (r + 1)) * (s.rounds - r - 1))} left for the passes`);
      }
    } finally {
      for (const e of passEngines) await e.dispose();
    }
    const passRows = [...passTimes].map(([key, times]) => {
      const [engine, b] = key.split('@');
      return { engine: engine!, batch: Number(b), median_ms: median(times), times_ms: times.map((t) => Number(t.toFixed(2))) };
    });
    const passMs = (engine: string, b = batch) => passRows.find((r) => r.engine === engine && r.batch === b)?.median_ms ?? Number.NaN;
    const tunedNames = peers.filter((p) => p.name !== 'pytorch').map((p) => p.name);
    const tunedName = tunedNames.length ? tunedNames.reduce((a, c) => (passMs(c) < passMs(a) ? c : a)) : 'pytorch';

    // Per case end to end: every engine at every TTA level, cases outermost.
    const levels = ttaLevels(plan);
    const caseEngines: CaseEngine[] = [
      { name: 'libtorch-fp32', model: withInference(model, { precision: 'fp32' }) },
      ...(precision === 'bf16' ? [{ name: 'libtorch-bf16', model: withInference(model, { precision: 'bf16' }) }] : []),
    ];
    const fp32Model = withInference(model, { precision: 'fp32' });
    for (const [name, b] of [
      ['onnx-fp32', bytes.fp32],
      ['onnx-int8', bytes.int8],
      ['onnx-pruned-fp32', bytes.pruned],
      ['onnx-pruned-int8', bytes.prunedInt8],
    ] as const) {
      const net = new OnnxNetwork(b, { threads: s.threads });
      disposers.push(() => net.dispose());
      caseEngines.push({ name, model: fp32Model, networks: [net] });
    }
    const settings = caseEngines.flatMap((e) => levels.map((l) => ({ e, l, m: withInference(e.model, { mirror: l.mirror, transpose: l.transpose }) })));
    const predDir = join(workDir, 'predictions');
    mkdirSync(predDir, { recursive: true });
    const runCase = async (m: LoadedModel, networks: NetworkPass[] | undefined, c: HeldOutCase) => {
      const start = performance.now();
      const input: InputCase = { id: c.id, subdir: '', source: { kind: 'image', path: c.image } };
      const images = await readInputCase(input, channels);
      const pred = predictVolumes(m, images, { networks });
      await writePrediction(predDir, input, defaultOutputFormat(input.source), images[0]!, pred, m.plan);
      return { seconds: (performance.now() - start) / 1000, labels: pred.labels };
    };
    const tw = performance.now();
    for (const st of settings) await runCase(st.m, st.e.networks, cases[0]!);
    const perCase = (performance.now() - tw) / 1000;
    console.log(
      `[${spec.key}] warm-up case: ${perCase.toFixed(1)} s for ${settings.length} settings; about ${fmtEta(perCase * cases.length)} for ${cases.length} cases`,
    );
    const results = settings.map(() => ({ seconds: [] as number[], dice: [] as number[] }));
    const tc = performance.now();
    for (const [i, c] of cases.entries()) {
      const ref = await readVolume(c.label);
      const region = c.region ? Uint8Array.from((await readVolume(c.region)).data as ArrayLike<number>, (x) => (x > 0 ? 1 : 0)) : undefined;
      const parts: string[] = [];
      for (const [k, st] of settings.entries()) {
        const r = await runCase(st.m, st.e.networks, c);
        results[k]!.seconds.push(r.seconds);
        results[k]!.dice.push(meanDice(r.labels, ref, spec.labels, region));
        if (st.l.isDefault) parts.push(`${st.e.name} ${r.seconds.toFixed(2)} s ${results[k]!.dice.at(-1)!.toFixed(3)}`);
      }
      const done = (performance.now() - tc) / 1000;
      console.log(`[${spec.key}] case ${i + 1}/${cases.length} ${c.id} (${fmtEta((done / (i + 1)) * (cases.length - i - 1))} left): ${parts.join(', ')}`);
    }
    const caseRows: CaseRow[] = settings.map((st, k) => {
      const r = results[k]!;
      return {
        engine: st.e.name,
        tta: st.l.name,
        ttaPasses: st.l.passes,
        isDefaultTta: st.l.isDefault,
        median_s: median(r.seconds),
        mean_dice: r.dice.reduce((a, b) => a + b, 0) / r.dice.length,
        worst_dice: Math.min(...r.dice),
        seconds: r.seconds.map((x) => Number(x.toFixed(4))),
        dice: r.dice.map((x) => Number(x.toFixed(5))),
      };
    });
    const row = (engine: string, tta?: string) => caseRows.find((r) => r.engine === engine && (tta === undefined ? r.isDefaultTta : r.tta === tta))!;
    const int8 = row('onnx-int8');
    const fp32 = row('onnx-fp32');
    const lt32 = row('libtorch-fp32');
    // The predictor as shipped: libtorch at the plan's precision and TTA.
    const reference = row(`libtorch-${precision}`);
    const fastest = caseRows.reduce((a, r) => (r.median_s < a.median_s ? r : a));
    const underGoal = caseRows.filter((r) => r.median_s <= CASE_GOAL_S);
    const bestUnderGoal = underGoal.length ? underGoal.reduce((a, r) => (r.mean_dice > a.mean_dice ? r : a)) : null;
    const speedup = passMs(tunedName) / passMs('onnx-int8');
    const deltaDice = int8.mean_dice - fp32.mean_dice;
    const worstRatio = Math.min(...int8.dice.map((d, i) => (fp32.dice[i]! > 0 ? d / fp32.dice[i]! : 1)));
    const setting = (r: CaseRow) => ({
      engine: r.engine,
      tta: r.tta,
      median_s: r.median_s,
      mean_dice: r.mean_dice,
      dice_cost: reference.mean_dice - r.mean_dice,
    });
    return {
      model: spec.key,
      architecture: plan.network.architecture,
      modelDir: spec.dir,
      fold,
      weights: model.weights[0],
      plan: {
        dims: plan.dims,
        patchSize: plan.patchSize,
        features: plan.network.features,
        inferencePrecision: precision,
        tta: levels[0]!.name,
        ttaPasses: levels[0]!.passes,
      },
      heldOutCases: cases.length,
      int8_speedup_vs_pytorch: speedup,
      int8_delta_dice: deltaDice,
      pytorch_tuned_allocator: tunedName,
      int8_speedup_vs_pytorch_default_allocator: passMs('pytorch') / passMs('onnx-int8'),
      int8_speedup_vs_onnx_fp32: passMs('onnx-fp32') / passMs('onnx-int8'),
      int8_speedup_vs_libtorch_fp32: passMs('libtorch-fp32') / passMs('onnx-int8'),
      int8_delta_dice_vs_libtorch_fp32: int8.mean_dice - lt32.mean_dice,
      int8_quality_gate: {
        mean_ratio: int8.mean_dice / fp32.mean_dice,
        worst_case_ratio: worstRatio,
        mean_ge_99: int8.mean_dice / fp32.mean_dice >= 0.99,
        worst_case_ge_99_9: worstRatio >= 0.999,
        note: "MLPerf 3D U-Net's bars (99 % and 99.9 % of fp32 Dice) applied to the mean and to the worst case against onnxruntime fp32",
      },
      pruned_int8_speedup_vs_pytorch: passMs(tunedName) / passMs('onnx-pruned-int8'),
      pruned_int8_delta_dice: row('onnx-pruned-int8').mean_dice - fp32.mean_dice,
      pruned_delta_dice: row('onnx-pruned-fp32').mean_dice - fp32.mean_dice,
      goals: {
        int8_speed_at_dice: {
          target: `int8 >= ${SPEEDUP_GOAL}x PyTorch fp32 (${tunedName}) per pass at batch ${batch}, Dice loss <= ${DICE_LOSS_GOAL}`,
          speedup,
          delta_dice: deltaDice,
          met: speedup >= SPEEDUP_GOAL && -deltaDice <= DICE_LOSS_GOAL,
        },
        case_end_to_end: {
          target: `a case end to end (read, preprocess, predict, write) in <= ${CASE_GOAL_S} s with some engine and TTA level${spec.data === 'hippocampus' ? '' : ' (the goal is for hippocampus; shown for comparison)'}`,
          reference: setting(reference),
          fastest: setting(fastest),
          best_dice_within_goal: bestUnderGoal ? setting(bestUnderGoal) : null,
          met: fastest.median_s <= CASE_GOAL_S,
        },
      },
      variants: {
        settings: s.variants,
        calibration: { dataset: calibDir, cases: calibration.cases },
        pruning: {
          kind: pruning.kind,
          sparsity: pruning.sparsity,
          fineTuned: prune.fineTuned,
          params: { before: paramsBefore, after: countParameters(pruned.nets[0]!, false) },
          macs: { before: macsBefore, after: countMACs(pruned.nets[0]!, plan.patchSize) },
        },
        seconds_to_make: prepSeconds,
        files,
      },
      sizes_bytes: sizes,
      parity,
      per_pass: {
        what: `one ${plan.patchSize.join('x')} patch (the centre of ${cases[0]!.id}) repeated to the batch; median of ${s.rounds} rounds x ${s.reps} passes after one warm-up; batch ${batch} is the sliding window's with the plan's TTA`,
        predicted_batch: batch,
        rows: passRows,
      },
      per_case: {
        what: 'seconds of read + preprocess + sliding window + TTA + back to the input grid + write, median over the held-out cases (each once, after one warm-up case per setting); Dice = mean over the foreground labels, mean over cases',
        rows: caseRows,
      },
      pytorch: Object.fromEntries(peers.map((p) => [p.name, p.ready])),
    };
  } finally {
    for (const d of disposers.reverse()) await d();
  }
}

// ---- report ------------------------------------------------------------------------------

type ModelResult = Awaited<ReturnType<typeof measureModel>>;

function printTable(rows: ModelResult[]): void {
  for (const r of rows) {
    const b = r.per_pass.predicted_batch;
    console.log(`\n${r.model} (${r.architecture}, ${r.heldOutCases} held-out cases, patch ${r.plan.patchSize.join('x')}, plan TTA ${r.plan.tta})`);
    console.log(`  per network pass          ms b=${String(b).padEnd(4)} ${b > 1 ? 'ms b=1' : ''}`);
    const engines = [...new Set(r.per_pass.rows.map((p) => p.engine))];
    for (const e of engines) {
      const at = (bb: number) => r.per_pass.rows.find((p) => p.engine === e && p.batch === bb)?.median_ms;
      console.log(`  ${e.padEnd(24)} ${at(b)!.toFixed(1).padStart(9)} ${b > 1 ? at(1)!.toFixed(1).padStart(8) : ''}`);
    }
    console.log('  per case end to end       TTA         s/case   Dice    worst');
    for (const c of r.per_case.rows) {
      console.log(
        `  ${c.engine.padEnd(24)} ${`${c.tta} (${c.ttaPasses})`.padEnd(11)} ${c.median_s.toFixed(3).padStart(7)}  ${c.mean_dice.toFixed(4)}  ${c.worst_dice.toFixed(4)}`,
      );
    }
    const s = r.sizes_bytes;
    console.log(
      `  sizes MB: safetensors ${(s.safetensors_fp32 / 1e6).toFixed(2)}, pruned ${(s.safetensors_pruned / 1e6).toFixed(2)}; ONNX fp32 ${(s.onnx_fp32 / 1e6).toFixed(2)}, int8 ${(s.onnx_int8 / 1e6).toFixed(2)}, pruned ${(s.onnx_pruned / 1e6).toFixed(2)}, pruned int8 ${(s.onnx_pruned_int8 / 1e6).toFixed(2)}`,
    );
    const g = r.goals;
    console.log(
      `  int8 vs PyTorch (${r.pytorch_tuned_allocator}) per pass: ${r.int8_speedup_vs_pytorch.toFixed(2)}x, ΔDice ${r.int8_delta_dice.toFixed(4)} -> goal ${g.int8_speed_at_dice.met ? 'MET' : 'not met'}`,
    );
    const f = g.case_end_to_end.fastest;
    const w = g.case_end_to_end.best_dice_within_goal;
    console.log(
      `  fastest case: ${f.engine} TTA ${f.tta} ${f.median_s.toFixed(3)} s, Dice cost ${f.dice_cost.toFixed(4)}` +
        (w
          ? `; best Dice within ${CASE_GOAL_S} s: ${w.engine} TTA ${w.tta} ${w.median_s.toFixed(3)} s, cost ${w.dice_cost.toFixed(4)}`
          : `; nothing within ${CASE_GOAL_S} s`),
    );
  }
}

function cpuFlags(): string[] {
  try {
    const flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .match(/^flags\s*:(.*)$/m)?.[1]
        ?.trim()
        .split(/\s+/) ?? [];
    return flags.filter((f) => /^(avx|amx|fma|f16c)/.test(f)).sort();
  } catch {
    return [];
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      'hippocampus-model': { type: 'string', default: join(repoRoot, 'runs/deploy/hippocampus-unet/model') },
      'drive-model': { type: 'string', default: join(repoRoot, 'runs/deploy/drive-unet/model') },
      'hybrid-model': { type: 'string', default: join(repoRoot, 'runs/deploy/hippocampus-hybridnet/model') },
      only: { type: 'string' },
      cases: { type: 'string' },
      rounds: { type: 'string' },
      reps: { type: 'string' },
      minutes: { type: 'string', default: '10' },
      quick: { type: 'boolean', default: false },
    },
  });
  const whole = (name: string, v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} needs a whole number >= 1, got '${v}'`);
    return n;
  };
  const quick = values.quick!;
  const s: Settings = {
    cases: whole('cases', values.cases, quick ? 2 : Number.MAX_SAFE_INTEGER),
    rounds: whole('rounds', values.rounds, quick ? 1 : 3),
    reps: whole('reps', values.reps, quick ? 1 : 2),
    minutes: Number(values.minutes),
    variants: DEFAULT_VARIANTS,
    threads: torch.getNumThreads(),
  };
  const specs: ModelSpec[] = [
    { key: 'hippocampus-unet', data: 'hippocampus', dir: values['hippocampus-model']!, architecture: 'unet', labels: [1, 2] },
    { key: 'drive-unet', data: 'drive', dir: values['drive-model']!, architecture: 'unet', labels: [1] },
    { key: 'hippocampus-hybridnet', data: 'hippocampus', dir: values['hybrid-model']!, architecture: 'hybridnet', labels: [1, 2] },
  ];
  const only = values.only?.split(',');
  const unknown = only?.filter((o) => !specs.some((sp) => sp.key === o));
  if (unknown?.length) throw new Error(`--only: unknown model ${unknown.join(', ')} (${specs.map((sp) => sp.key).join(', ')})`);
  const chosen = specs.filter((sp) => !only || only.includes(sp.key));
  for (const sp of chosen) await ensureModel(sp, s.minutes);

  const loadBefore = loadavg();
  const started = performance.now();
  const { peers, missing, settings: allocatorSettings } = await startPeers(s.threads);
  const rows: ModelResult[] = [];
  try {
    for (const [i, sp] of chosen.entries()) {
      console.log(`== ${sp.key} (${i + 1}/${chosen.length}) ${sp.dir}`);
      rows.push(await measureModel(sp, s, peers));
      const done = (performance.now() - started) / 1000;
      if (i + 1 < chosen.length) console.log(`== ${fmtEta(done)} so far; about ${fmtEta((done / (i + 1)) * (chosen.length - i - 1))} left`);
    }
  } finally {
    for (const p of peers) await p.peer.close();
  }
  const tag = quick ? 'quick' : values.cases !== undefined ? `cases${s.cases}` : null;
  const path = writeResult(
    'deploy',
    args,
    {
      machineExtra: { cpuFlags: cpuFlags(), threads: s.threads, cpus: cpus().length, loadavgAfter: loadavg() },
      settings: { ...s, cases: values.cases === undefined && !quick ? 'all' : s.cases },
      allocators: { pytorch: 'glibc malloc (as installed)', ...allocatorSettings, missing },
      goals: {
        int8_speed: `onnxruntime int8 >= ${SPEEDUP_GOAL}x PyTorch eager fp32 (the faster tuned allocator) per network pass, at int8 Dice - fp32 Dice >= -${DICE_LOSS_GOAL}`,
        hippocampus_case: `a hippocampus case end to end in <= ${CASE_GOAL_S} s with some engine and TTA level, with the Dice cost of that setting`,
        dice_cost:
          'mean Dice of libtorch at the plan precision and TTA (the predictor as shipped) minus the mean Dice of the setting; negative = the setting scores higher',
      },
      seconds: (performance.now() - started) / 1000,
      rows,
    },
    loadBefore,
    tag,
  );
  printTable(rows);
  console.log(`\nwrote ${path} (${fmtEta((performance.now() - started) / 1000)})`);
}
