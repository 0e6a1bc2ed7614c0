/**
 * Data-parallel training on c10d Gloo over loopback, ranks as separate
 * processes (bench/lib/ddp-rank.ts):
 *
 * - Throughput of the 3D bench U-Net (hippocampus patch 40x56x40): 1 process
 *   at the global batch with every core, against 2 ranks at half the batch
 *   with the cores split between them (all-reduce overlapped with backward in
 *   1 MB buckets, and after backward in one 25 MB bucket). On one 2-core machine the ranks share the cores, so
 *   this bounds the scaling from above at ~1x; it measures the overhead.
 * - All-reduce time per MB between 2 processes, medseg's binding against
 *   PyTorch's torch.distributed (the same c10d and Gloo), fitted as
 *   latency + size x ms-per-MB.
 * - A projection to several machines (one rank each, the 1-process step per
 *   machine): step = compute + all-reduce of the gradients, the ring's
 *   2(N-1)/N traffic at the measured loopback rate and at 10 and 1 Gb/s,
 *   with no credit for overlap (an upper bound on the communication cost).
 *
 *   npm run bench -- ddp [--steps 8] [--warmup 2] [--batch 2] [--repeats 10]
 *
 * Writes bench/results/ddp.json.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@medseg/torch';
import { cpuBusyPercent, takeTag, writeResult } from './lib/report.ts';
import { median, round } from './lib/stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const rankScript = join(here, 'lib', 'ddp-rank.ts');
const pyScript = join(here, 'py', 'ddp_allreduce.py');

interface Flags {
  steps: number;
  warmup: number;
  batch: number;
  repeats: number;
}

function parseFlags(args: string[]): Flags {
  const f: Flags = { steps: 8, warmup: 2, batch: 2, repeats: 10 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = Number(args[++i]);
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${a} needs an integer >= 1`);
    if (a === '--steps') f.steps = v;
    else if (a === '--warmup') f.warmup = v;
    else if (a === '--batch') f.batch = v;
    else if (a === '--repeats') f.repeats = v;
    else throw new Error(`unknown flag '${a}': use --steps N --warmup W --batch B (global, even) --repeats R`);
  }
  if (f.batch % 2 !== 0) throw new Error('--batch is the global batch and must split over 2 ranks');
  return f;
}

/** Runs `world` ranks of a command (argv after the interpreter, given the rank and port) and returns rank 0's JSON line. */
async function runRanks(world: number, command: (rank: number, port: number) => string[], threadsPerRank: number): Promise<Record<string, unknown>> {
  const port = await freePort();
  const results = await Promise.all(
    Array.from({ length: world }, (_, rank) => {
      const [exe, ...argv] = command(rank, port);
      const child = spawn(exe!, argv, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, MEDSEG_THREADS: String(threadsPerRank), OMP_NUM_THREADS: String(threadsPerRank) },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      return new Promise<string>((resolve, reject) =>
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${rank} of ${exe} exited ${code}: ${err.slice(-2000)}`)))),
      );
    }),
  );
  return JSON.parse(results[0]!.trim().split('\n').pop()!) as Record<string, unknown>;
}

const node = (mode: string, world: number, args: unknown) => (rank: number, port: number) => [
  process.execPath,
  '--import',
  'tsx',
  rankScript,
  mode,
  String(rank),
  String(world),
  String(port),
  JSON.stringify(args),
];

/** Least-squares line through (size MB, median ms): latency (ms) and ms per MB. */
function fitLine(points: [number, number][]): { latencyMs: number; msPerMB: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const slope = sxy / sxx;
  return { latencyMs: round(my - slope * mx, 3), msPerMB: round(slope, 3) };
}

export async function main(args: string[]): Promise<void> {
  const { tag, rest } = takeTag(args);
  const f = parseFlags(rest);
  const loadBefore = loadavg().map((x) => round(x));
  const busyBefore = await cpuBusyPercent();
  const cores = cpus().length;
  const model = { channels: [16, 32, 64, 128], patch: [40, 56, 40] };
  // The bench net's gradients (~5 MB) fit one 25 MB bucket, which can only go when backward ends: overlap runs with 1 MB buckets.
  const train = (world: number, overlap: boolean) =>
    runRanks(
      world,
      node('train', world, { ...model, batch: f.batch / world, warmup: f.warmup, steps: f.steps, overlap, bucketMB: overlap ? 1 : 25 }),
      Math.max(1, Math.floor(cores / world)),
    ) as Promise<{ stepMs: number[]; waitMs: number[]; gradientMB: number; buckets: number }>;

  const single = await train(1, false);
  const overlapped = await train(2, true);
  const after = await train(2, false);
  const throughput = (r: { stepMs: number[] }) => round(f.batch / (median(r.stepMs) / 1000), 3);

  const sizesMB = [1, 4, 16, 64];
  const reduceArgs = { sizesMB, warmup: 2, repeats: f.repeats };
  const medsegReduce = (await runRanks(2, node('allreduce', 2, reduceArgs), 1)) as { ms: Record<string, number[]> };
  const torchReduce = (await runRanks(2, (rank, port) => ['/usr/bin/python3', pyScript, String(rank), '2', String(port), JSON.stringify(reduceArgs)], 1)) as {
    ms: Record<string, number[]>;
  };
  const perSize = (r: { ms: Record<string, number[]> }) => Object.fromEntries(sizesMB.map((mb) => [mb, round(median(r.ms[mb]!), 3)]));
  const medsegFit = fitLine(sizesMB.map((mb) => [mb, median(medsegReduce.ms[mb]!)]));
  const torchFit = fitLine(sizesMB.map((mb) => [mb, median(torchReduce.ms[mb]!)]));

  // Several machines, one rank each, each at the 1-process step: the ring all-reduce moves 2(N-1)/N of the gradients.
  const computeMs = median(single.stepMs);
  const links: Record<string, number> = { loopback_measured: medsegFit.msPerMB, '10GbE': 1000 / 1250, '1GbE': 1000 / 125 };
  const projection = Object.fromEntries(
    Object.entries(links).map(([link, msPerMB]) => [
      link,
      Object.fromEntries(
        [2, 4, 8, 16].map((n) => {
          const commMs = medsegFit.latencyMs + single.gradientMB * msPerMB * ((2 * (n - 1)) / n);
          return [n, { commMs: round(commMs, 1), speedup: round((n * computeMs) / (computeMs + commMs), 2) }];
        }),
      ),
    ]),
  );

  const body = {
    busy_percent_before: busyBefore,
    model: { network: '3D bench U-Net', ...model, gradientMB: round(single.gradientMB, 2) },
    buckets: { overlapped_1MB: overlapped.buckets, after_backward_25MB: after.buckets },
    global_batch: f.batch,
    steps: f.steps,
    warmup: f.warmup,
    throughput_samples_per_s: {
      one_process: throughput(single),
      two_ranks_overlapped: throughput(overlapped),
      two_ranks_after_backward: throughput(after),
    },
    scaling_2_ranks_vs_1: round(throughput(overlapped) / throughput(single), 2),
    step_ms: {
      one_process: round(median(single.stepMs), 1),
      two_ranks_overlapped: round(median(overlapped.stepMs), 1),
      two_ranks_after_backward: round(median(after.stepMs), 1),
    },
    allreduce_wait_after_backward_ms: {
      overlapped: round(median(overlapped.waitMs), 1),
      after_backward: round(median(after.waitMs), 1),
    },
    allreduce_ms_by_MB: { medseg: perSize(medsegReduce), pytorch: perSize(torchReduce) },
    allreduce_fit: { medseg: medsegFit, pytorch: torchFit },
    projection_assumptions:
      'one rank per machine at the 1-process step time and batch; all-reduce = fitted latency + gradient MB x 2(N-1)/N x ms per MB of the link; no overlap credit',
    projection,
    note: `On this ${cores}-core machine the 2 ranks share the cores (${Math.max(1, Math.floor(cores / 2))} thread(s) each), so 2 ranks cannot beat 1 process; the ratio shows the data-parallel overhead.`,
  };
  const path = writeResult('ddp', args, body, loadBefore, tag);
  console.log(
    `throughput (samples/s): 1 process ${body.throughput_samples_per_s.one_process}, 2 ranks ${body.throughput_samples_per_s.two_ranks_overlapped} (overlapped), ${body.throughput_samples_per_s.two_ranks_after_backward} (after backward)`,
  );
  console.log(`all-reduce: medseg ${medsegFit.latencyMs} ms + ${medsegFit.msPerMB} ms/MB, PyTorch ${torchFit.latencyMs} ms + ${torchFit.msPerMB} ms/MB`);
  for (const [link, rows] of Object.entries(projection)) {
    console.log(
      `projected speedup over ${link}: ${Object.entries(rows)
        .map(([n, r]) => `${n} machines ${r.speedup}x`)
        .join(', ')}`,
    );
  }
  console.log(`wrote ${path}`);
}
