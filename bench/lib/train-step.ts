/**
 * One U-Net training step (medseg's own, train/step.ts: forward,
 * cross-entropy, zero grad, backward, AdamW step, loss.item(); no clipping, as
 * the PyTorch side) timed in medseg and in PyTorch in the same run, rounds
 * rotating through every side, then optionally one step in tfjs' pure-JS CPU
 * backend. Shared by bench/train-step.ts (2D) and bench/train-step-3d.ts (3D).
 *
 * Sides, each in fp32 and in bf16 mixed precision (autocast forward, fp32
 * loss, weights and optimizer): medseg; PyTorch as installed (glibc malloc);
 * PyTorch with jemalloc (LD_PRELOAD, the MALLOC_CONF performance-minded
 * PyTorch CPU users run) and with tcmalloc (gperftools), the allocators that
 * keep glibc from page-faulting every fresh large buffer. The faster tuned
 * allocator's fp32 time is pytorch_tuned_ms, the peer medseg must match.
 *
 * Flags: --rounds N (4) --steps K (3 per round and side) --warmup W (2)
 *        --tag NAME (write <bench>-NAME.json: experiments beside the main result)
 *        --threads T (the engine's count) --no-tfjs --tfjs-steps S (1)
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Precision } from '../../packages/medseg/src/plan/types.ts';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as torch from '@medseg/torch';
import { PythonPeer } from './peer.ts';
import { blasLibrary, cpuBusyPercent, takeTag, writeResult } from './report.ts';
import { median, round, timeRepeated } from './stats.ts';
import { BenchUNet, unetForwardMacs } from './unet.ts';
import { makeOptimizer, trainingStep } from '../../packages/medseg/src/train/step.ts';

export interface TrainStepConfig {
  name: string;
  dims: 2 | 3;
  channels: number[];
  /** [N, C, ...spatial] */
  input: number[];
}

export interface Flags {
  rounds: number;
  steps: number;
  warmup: number;
  threads: number;
  tfjs: boolean;
  tfjsSteps: number;
}

export function parseFlags(args: string[]): Flags {
  const f: Flags = { rounds: 4, steps: 3, warmup: 2, threads: torch.getNumThreads(), tfjs: true, tfjsSteps: 1 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const num = (): number => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer, got '${args[i]}'`);
      return v;
    };
    if (a === '--no-tfjs') f.tfjs = false;
    else if (a === '--rounds') f.rounds = num();
    else if (a === '--steps') f.steps = num();
    else if (a === '--warmup') f.warmup = num();
    else if (a === '--threads') f.threads = num();
    else if (a === '--tfjs-steps') f.tfjsSteps = num();
    else throw new Error(`unknown flag '${a}': use --rounds N --steps K --warmup W --threads T --no-tfjs --tfjs-steps S`);
  }
  if (f.threads < 1) throw new Error('--threads must be >= 1');
  return f;
}

/**
 * A tfjs step takes minutes (tfjs_ms in bench/results/train-step.json), so
 * --no-tfjs carries the last measured tfjs time over from the previous result
 * file, labelled with that run's date, command and load; the ratio uses this
 * run's medseg time.
 */
function carriedTfjs(name: string, medsegMs: number): Record<string, unknown> | null {
  const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', `${name}.json`);
  if (!existsSync(path)) return null;
  const old = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> & { machine?: { loadavg?: number[] } };
  const measured = (old.tfjs_measured as Record<string, unknown> | undefined) ?? { date: old.date, command: old.command, loadavg: old.machine?.loadavg };
  if (typeof old.tfjs_error === 'string') return { tfjs_ms: null, tfjs_error: old.tfjs_error, tfjs_note: old.tfjs_note, tfjs_measured: measured };
  if (typeof old.tfjs_ms !== 'number') return null;
  return {
    tfjs_ms: old.tfjs_ms,
    tfjs_ratio: round(old.tfjs_ms / medsegMs, 1),
    tfjs_steps_ms: old.tfjs_steps_ms,
    tfjs_note: old.tfjs_note,
    tfjs_measured: measured,
    tfjs_carried_over: "not re-run (--no-tfjs): tfjs_ms is from the run in tfjs_measured; tfjs_ratio uses this run's medseg_ms",
  };
}

export async function runTrainStep(cfg: TrainStepConfig, args: string[]): Promise<void> {
  const { tag, rest } = takeTag(args);
  const flags = parseFlags(rest);
  const loadBefore = loadavg().map((x) => round(x));
  const busyBefore = await cpuBusyPercent();
  torch.setNumThreads(flags.threads);
  torch.manualSeed(0);

  const model = new BenchUNet(cfg.dims, cfg.channels, cfg.input[1]).train();
  const opt = makeOptimizer(model, { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, momentum: 0 });
  const x = torch.randn(cfg.input).keep();
  const y = torch.randint(0, 2, [cfg.input[0]!, ...cfg.input.slice(2)], { dtype: 'int64' }).keep();
  const step = (precision: Precision) => (): number => trainingStep(model, opt, x, y, { loss: { name: 'ce' }, gradClip: 0, precision });

  const peerArgs = ['--dims', String(cfg.dims), '--channels', cfg.channels.join(','), '--input', cfg.input.join(','), '--threads', String(flags.threads)];
  // The same BLAS threading as this process (the engine sets 1 unless told otherwise).
  const blasEnv = { OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
  const allocators = tunedAllocators();
  const peers: { name: string; peer: PythonPeer; ready: Record<string, unknown> }[] = [];
  try {
    for (const a of [{ name: 'pytorch', env: {} as Record<string, string> }, ...allocators.available]) {
      const { peer, ready } = await PythonPeer.start('train_step.py', peerArgs, { ...blasEnv, ...a.env });
      peers.push({ name: a.name, peer, ready });
    }
  } catch (e) {
    await Promise.all(peers.map((p) => p.peer.close()));
    throw e;
  }
  const ready = peers[0]!.ready;
  const params = model.numParameters();
  const paramTensors = model.parameters().length;
  if (ready.params !== params || ready.param_tensors !== paramTensors) {
    await Promise.all(peers.map((p) => p.peer.close()));
    throw new Error(`networks differ: medseg ${params} parameters in ${paramTensors} tensors, PyTorch ${ready.params} in ${ready.param_tensors}`);
  }

  // Every side: a name (its JSON key stem) and how to run n timed steps.
  const sides: { key: string; run: (n: number) => Promise<number[]> }[] = [
    { key: 'medseg', run: async (n) => timeRepeated(step('fp32'), n) },
    { key: 'medseg_bf16', run: async (n) => timeRepeated(step('bf16'), n) },
    ...peers.flatMap((p) => [
      { key: p.name, run: async (n: number) => (await p.peer.request<{ ms: number[] }>({ cmd: 'steps', n, bf16: false })).ms },
      { key: `${p.name}_bf16`, run: async (n: number) => (await p.peer.request<{ ms: number[] }>({ cmd: 'steps', n, bf16: true })).ms },
    ]),
  ];
  const times = new Map<string, number[]>(sides.map((sd) => [sd.key, []]));
  try {
    for (const sd of sides) await sd.run(flags.warmup);
    const live0 = torch.liveTensors();
    for (let r = 0; r < flags.rounds; r++) {
      // Rotate who goes first so a drift in machine load hits every side alike.
      const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
      for (const sd of order) times.get(sd.key)!.push(...(await sd.run(flags.steps)));
      console.log(
        `round ${r + 1}/${flags.rounds}: ` +
          sides
            .map(
              (sd) =>
                `${sd.key} ${times
                  .get(sd.key)!
                  .slice(-flags.steps)
                  .map((v) => v.toFixed(0))
                  .join(' ')}`,
            )
            .join(', ') +
          ' ms',
      );
    }
    const leaked = torch.liveTensors() - live0;
    if (leaked !== 0) console.warn(`warning: ${leaked} native tensors more than before the timed steps`);
  } finally {
    await Promise.all(peers.map((p) => p.peer.close()));
  }
  const med = (key: string): number | null => {
    const t = times.get(key);
    return t && t.length ? median(t) : null;
  };
  const medsegMs = times.get('medseg')!;
  const pytorchMs = times.get('pytorch')!;
  const medsegMedian = median(medsegMs);
  const pytorchMedian = median(pytorchMs);
  const bf16Median = med('medseg_bf16')!;
  // The tuned peer: the faster of the tuned allocators in fp32.
  const tuned = allocators.available.map((a) => ({ name: a.name, ms: med(a.name)! })).sort((a, b) => a.ms - b.ms)[0] ?? null;
  const flops = 3 * 2 * unetForwardMacs(cfg.dims, cfg.channels, cfg.input.slice(2), cfg.input[0]!, cfg.input[1]);

  model.dispose();
  opt.dispose();
  x.dispose();
  y.dispose();

  let tfjs: Record<string, unknown> = { tfjs_skipped: true };
  if (!flags.tfjs && !tag) tfjs = carriedTfjs(cfg.name, medsegMedian) ?? tfjs;
  if (flags.tfjs && flags.tfjsSteps > 0) {
    const { tfjsTrainStepMs } = await import('./tfjs-unet.ts');
    const t0 = performance.now();
    const version = (await import('@tensorflow/tfjs')).version.tfjs;
    const setup = `@tensorflow/tfjs ${version} 'cpu' backend (pure JS, one thread), channels-last, same layers${cfg.dims === 3 ? ' (BatchNorm on D folded into H: tfjs BN stops at rank 4)' : ''}; Adam (tfjs has no AdamW)`;
    try {
      const ms = await tfjsTrainStepMs(cfg.dims, cfg.channels, cfg.input, flags.tfjsSteps, params);
      const tfjsMs = median(ms);
      tfjs = {
        tfjs_ms: round(tfjsMs, 1),
        tfjs_ratio: round(tfjsMs / medsegMedian, 1),
        tfjs_steps_ms: ms.map((v) => round(v, 1)),
        tfjs_note: `${setup}; tfjs_ratio = tfjs_ms / medseg_ms; wall time incl. model build ${round((performance.now() - t0) / 1000, 1)} s`,
      };
    } catch (e) {
      // What a TypeScript user gets today includes what tfjs cannot train at all.
      const message = e instanceof Error ? e.message : String(e);
      console.warn(`tfjs could not run the step: ${message}`);
      tfjs = { tfjs_ms: null, tfjs_error: message, tfjs_note: setup };
    }
  }

  const result = {
    what: `${cfg.dims}D U-Net training step (channels ${cfg.channels.join('/')}, two conv3x3+BN+ReLU per level, max-pool, ConvTranspose k2 s2, skip concat, 1x1 head to 2 classes), input ${cfg.input.join('x')}, cross-entropy, AdamW lr 1e-3 wd 0.01`,
    medseg_ms: round(medsegMedian, 1),
    pytorch_ms: round(pytorchMedian, 1),
    ratio: round(medsegMedian / pytorchMedian, 3),
    bf16_ms: round(bf16Median, 1),
    pytorch_tuned_ms: tuned ? round(tuned.ms, 1) : null,
    pytorch_tuned_allocator: tuned?.name.replace('pytorch_', '') ?? null,
    ratio_vs_pytorch_tuned: tuned ? round(medsegMedian / tuned.ms, 3) : null,
    bf16_ratio_vs_pytorch_fp32: tuned ? round(bf16Median / tuned.ms, 3) : null,
    pytorch_tuned_bf16_ms: tuned ? round(med(`${tuned.name}_bf16`)!, 1) : null,
    bf16_ratio_vs_pytorch_bf16: tuned ? round(bf16Median / med(`${tuned.name}_bf16`)!, 3) : null,
    pytorch_bf16_ms: round(med('pytorch_bf16')!, 1),
    medians_ms: Object.fromEntries([...times.keys()].map((k) => [k, round(med(k)!, 1)])),
    ratio_notes: {
      ratio: 'medseg fp32 / PyTorch fp32 as installed (glibc malloc)',
      ratio_vs_pytorch_tuned: 'medseg fp32 / PyTorch fp32 with the faster tuned allocator (pytorch_tuned_allocator)',
      bf16_ratio_vs_pytorch_fp32: 'medseg bf16 / PyTorch fp32 with the faster tuned allocator',
      bf16_ratio_vs_pytorch_bf16: 'medseg bf16 / PyTorch bf16 autocast with that allocator',
    },
    allocators: { ...allocators.settings, missing: allocators.missing },
    ...tfjs,
    threads: {
      medseg_intra_op: torch.getNumThreads(),
      pytorch_intra_op: ready.threads,
      OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null,
      python_OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1',
      OMP_WAIT_POLICY_both: process.env.OMP_WAIT_POLICY ?? 'libgomp default',
      GOMP_SPINCOUNT_both: process.env.GOMP_SPINCOUNT ?? 'libgomp default',
    },
    steps: {
      per_side: medsegMs.length,
      rounds: flags.rounds,
      per_round: flags.steps,
      warmup: flags.warmup,
      order: `rounds rotate through the ${sides.length} sides (${sides.map((sd) => sd.key).join(', ')}), a different side first each round`,
    },
    medseg_steps_ms: medsegMs.map((v) => round(v, 1)),
    pytorch_steps_ms: pytorchMs.map((v) => round(v, 1)),
    steps_ms: Object.fromEntries([...times].map(([k, v]) => [k, v.map((t) => round(t, 1))])),
    parameters: params,
    flops_per_step: flops,
    flops_note: 'conv + transposed-conv FLOPs only (2 per MAC), training step counted as 3x forward',
    medseg_gflops: round(flops / medsegMedian / 1e6, 1),
    pytorch_gflops: round(flops / pytorchMedian / 1e6, 1),
    pytorch: ready.torch,
    libtorch_medseg: torch.torchVersion,
    blas: blasLibrary(),
    cpu_busy_pct_before: busyBefore,
    cpu_busy_note: 'all-CPU busy percent in the second before the run (other processes); loadavg lags by a minute',
    ...(process.env.BENCH_LOAD_NOTE ? { load_note: process.env.BENCH_LOAD_NOTE } : {}),
  };
  const path = writeResult(cfg.name, args, result, loadBefore, tag);
  console.log(
    JSON.stringify({
      medseg_ms: result.medseg_ms,
      bf16_ms: result.bf16_ms,
      pytorch_ms: result.pytorch_ms,
      pytorch_tuned_ms: result.pytorch_tuned_ms,
      pytorch_tuned_bf16_ms: result.pytorch_tuned_bf16_ms,
      ratio: result.ratio,
      ratio_vs_pytorch_tuned: result.ratio_vs_pytorch_tuned,
      bf16_ratio_vs_pytorch_fp32: result.bf16_ratio_vs_pytorch_fp32,
      ...('tfjs_ms' in tfjs ? { tfjs_ms: tfjs.tfjs_ms, tfjs_ratio: tfjs.tfjs_ratio } : {}),
    }),
  );
  console.log(`wrote ${path}`);
}

/** jemalloc's settings for PyTorch on CPU: no decay (freed pages stay mapped for reuse), background purging, huge pages for metadata, every large allocation in its own extent. */
export const JEMALLOC_CONF = 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1';
const LIB = '/usr/lib/x86_64-linux-gnu';

/** The tuned allocators installed here (scripts/setup.sh test installs libjemalloc2 and libgoogle-perftools4), as peer environments. */
export function tunedAllocators(): {
  available: { name: string; env: Record<string, string> }[];
  settings: Record<string, Record<string, string>>;
  missing: string[];
} {
  const all = [
    { name: 'pytorch_jemalloc', lib: `${LIB}/libjemalloc.so.2`, env: { MALLOC_CONF: JEMALLOC_CONF } as Record<string, string>, pkg: 'libjemalloc2' },
    { name: 'pytorch_tcmalloc', lib: `${LIB}/libtcmalloc.so.4`, env: {} as Record<string, string>, pkg: 'libgoogle-perftools4' },
  ];
  const available = all.filter((a) => existsSync(a.lib)).map((a) => ({ name: a.name, env: { LD_PRELOAD: a.lib, ...a.env } }));
  return {
    available,
    settings: Object.fromEntries(available.map((a) => [a.name.replace('pytorch_', ''), a.env])),
    missing: all.filter((a) => !existsSync(a.lib)).map((a) => `${a.name.replace('pytorch_', '')} (apt-get install ${a.pkg})`),
  };
}
