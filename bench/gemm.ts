/**
 * Achieved GFLOP/s of the kernels training lives on, medseg vs PyTorch in the
 * same run: float32 matmul n x n (2 n^3 FLOPs) and a 3x3 conv2d C->C on
 * [N, C, H, W], forward (2 N C H W C 9 FLOPs) and forward + backward (3x that:
 * input and weight gradients). Two PyTorch peers: one with our thread settings
 * (OPENBLAS_NUM_THREADS=1, intra-op = threads) and one with OpenBLAS left at
 * its default (every core), which shows what the machine's GEMM can reach.
 * Writes bench/results/gemm.json.
 *
 *   npm run bench -- gemm [--n 4096] [--rounds 2] [--reps 3] [--threads T] [--tag NAME]
 */
import { loadavg } from 'node:os';
import * as torch from '../packages/torch/src/index.ts';
import { PythonPeer } from './lib/peer.ts';
import { blasLibrary, cpuBusyPercent, takeTag, writeResult } from './lib/report.ts';
import { median, round, timeRepeated } from './lib/stats.ts';

type What = 'matmul' | 'conv_fwd' | 'conv_fwdbwd';
const WHATS: What[] = ['matmul', 'conv_fwd', 'conv_fwdbwd'];

function parse(args: string[]): { n: number; rounds: number; reps: number; threads: number } {
  const o = { n: 4096, rounds: 2, reps: 3, threads: torch.getNumThreads() };
  for (let i = 0; i < args.length; i++) {
    const key = args[i]!.replace(/^--/, '') as keyof typeof o;
    const v = Number(args[++i]);
    if (!(key in o) || !Number.isInteger(v) || v < 1)
      throw new Error(`usage: gemm [--n 4096] [--rounds 2] [--reps 3] [--threads T]; bad '${args[i - 1]} ${args[i]}'`);
    o[key] = v;
  }
  return o;
}

export async function main(args: string[]): Promise<void> {
  const { tag, rest } = takeTag(args);
  const o = parse(rest);
  const loadBefore = loadavg().map((x) => round(x));
  const busyBefore = await cpuBusyPercent();
  torch.setNumThreads(o.threads);
  const conv = [8, 64, 128, 128] as const;
  const [N, C, H, W] = conv;
  const flops: Record<What, number> = {
    matmul: 2 * o.n ** 3,
    conv_fwd: 2 * N * C * H * W * C * 9,
    conv_fwdbwd: 3 * 2 * N * C * H * W * C * 9,
  };

  torch.manualSeed(0);
  const A = torch.randn([o.n, o.n]).keep();
  const B = torch.randn([o.n, o.n]).keep();
  const x = torch.randn([...conv], { requiresGrad: true }).keep();
  const w = torch.randn([C, C, 3, 3], { requiresGrad: true }).keep();
  const g = torch.randn([...conv]).keep();
  const ours: Record<What, () => void> = {
    matmul: () => A.mm(B).dispose(),
    conv_fwd: () => torch.noGrad(() => torch.F.conv(x, w, null, { padding: 1 }).dispose()),
    conv_fwdbwd: () =>
      torch.tidy(() => {
        x.grad = null;
        w.grad = null;
        torch.F.conv(x, w, null, { padding: 1 }).backward(g);
      }),
  };

  const peerArgs = ['--threads', String(o.threads), '--n', String(o.n), '--conv', conv.join(',')];
  const same = await PythonPeer.start('gemm.py', peerArgs, { OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' });
  const env = { ...process.env };
  delete env.OPENBLAS_NUM_THREADS;
  const blasDefault = await PythonPeer.start('gemm.py', peerArgs, env as Record<string, string>);
  const ms: Record<string, Record<What, number[]>> = {};
  const sides = ['medseg', 'pytorch', 'pytorch_openblas_default'] as const;
  for (const s of sides) ms[s] = { matmul: [], conv_fwd: [], conv_fwdbwd: [] };
  try {
    for (const what of WHATS) {
      // One untimed run each to warm caches and the kernels' lazy set-up.
      ours[what]();
      await same.peer.request({ cmd: 'time', what, n: 1 });
      await blasDefault.peer.request({ cmd: 'time', what, n: 1 });
      for (let r = 0; r < o.rounds; r++) {
        ms.medseg![what].push(...timeRepeated(ours[what], o.reps));
        ms.pytorch![what].push(...(await same.peer.request<{ ms: number[] }>({ cmd: 'time', what, n: o.reps })).ms);
        ms.pytorch_openblas_default![what].push(...(await blasDefault.peer.request<{ ms: number[] }>({ cmd: 'time', what, n: o.reps })).ms);
      }
      console.log(what, Object.fromEntries(sides.map((s) => [s, `${round(median(ms[s]![what]), 1)} ms`])));
    }
  } finally {
    await same.peer.close();
    await blasDefault.peer.close();
    for (const t of [A, B, x, w, g]) t.dispose();
  }

  const results: Record<string, Record<string, number>> = {};
  for (const what of WHATS) {
    const row: Record<string, number> = {};
    for (const s of sides) {
      const m = median(ms[s]![what]);
      row[`${s}_ms`] = round(m, 1);
      row[`${s}_gflops`] = round(flops[what] / m / 1e6, 1);
    }
    row.ratio = round(row.medseg_ms! / row.pytorch_ms!, 3);
    row.gflop = round(flops[what] / 1e9, 2);
    results[what] = row;
  }
  console.table(results);
  const path = writeResult(
    'gemm',
    args,
    {
      what: `float32 matmul ${o.n}x${o.n}; conv2d ${C}->${C} 3x3 pad 1 on ${conv.join('x')}: forward, and forward+backward (input + weight grads)`,
      flops_note: 'matmul 2n^3; conv forward 2*N*Cout*H*W*Cin*9, forward+backward 3x forward. ratio = medseg_ms / pytorch_ms (same thread settings)',
      results,
      threads: {
        intra_op: o.threads,
        medseg_OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null,
        pytorch_OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1',
        pytorch_openblas_default: 'OPENBLAS_NUM_THREADS unset (OpenBLAS uses every core)',
        pytorch_intra_op: same.ready.threads,
        OMP_WAIT_POLICY_all: process.env.OMP_WAIT_POLICY ?? 'libgomp default',
        GOMP_SPINCOUNT_all: process.env.GOMP_SPINCOUNT ?? 'libgomp default',
      },
      reps_per_side: o.rounds * o.reps,
      pytorch: same.ready.torch,
      blas: blasLibrary(),
      cpu_busy_pct_before: busyBefore,
    },
    loadBefore,
    tag,
  );
  console.log(`wrote ${path}`);
}
