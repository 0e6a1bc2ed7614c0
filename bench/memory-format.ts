/**
 * Channels-last memory format in medseg's training step: the same network,
 * weights and input laid out NC(D)HW (contiguous) or N(D)HWC (channels_last /
 * channels_last_3d, weights and input converted once), in fp32 and in bf16
 * autocast, rounds rotating through the four variants. Networks: the
 * train-step benches' U-Nets (batch norm) and medseg's own U-Net (instance
 * norm) at plan-like sizes in 2D and 3D. The ratio that matters is
 * channels-last / contiguous of the same network and precision in the same
 * run. Writes bench/results/memory-format.json.
 *
 *   npm run bench -- memory-format [--rounds 2] [--steps 3] [--only name,...]
 */
import { loadavg } from 'node:os';
import * as torch from '@medseg/torch';
import { cpuBusyPercent, takeTag, writeResult } from './lib/report.ts';
import { median, round, timeRepeated } from './lib/stats.ts';
import { BenchUNet } from './lib/unet.ts';
import { createNetwork } from '../packages/medseg/src/models/registry.ts';
import { makeOptimizer, trainingStep } from '../packages/medseg/src/train/step.ts';
import type { NetworkConfig, Precision } from '../packages/medseg/src/plan/types.ts';

type Net = torch.nn.Module & { forward(x: torch.Tensor): torch.Tensor | torch.Tensor[] };

function unetConfig(dims: 2 | 3, features: number[]): NetworkConfig {
  const k = new Array(dims).fill(3);
  return {
    architecture: 'unet',
    dims,
    inChannels: 1,
    numClasses: 2,
    features,
    kernelSizes: features.map(() => k),
    strides: features.map((_, i) => new Array(dims).fill(i === 0 ? 1 : 2)),
    deepSupervision: true,
    norm: 'instance',
  };
}

const NETWORKS: { name: string; dims: 2 | 3; input: number[]; make: () => Net; loss: 'ce' | 'dice_ce' }[] = [
  { name: 'bench-unet-2d', dims: 2, input: [8, 1, 128, 128], make: () => new BenchUNet(2, [16, 32, 64, 128], 1), loss: 'ce' },
  { name: 'bench-unet-3d', dims: 3, input: [2, 1, 48, 48, 48], make: () => new BenchUNet(3, [8, 16, 32], 1), loss: 'ce' },
  { name: 'medseg-unet-2d', dims: 2, input: [8, 1, 128, 128], make: () => createNetwork(unetConfig(2, [32, 64, 128, 256, 256])), loss: 'dice_ce' },
  { name: 'medseg-unet-3d', dims: 3, input: [2, 1, 40, 56, 40], make: () => createNetwork(unetConfig(3, [16, 32, 64, 128])), loss: 'dice_ce' },
];

export async function main(args: string[]): Promise<void> {
  const { tag, rest } = takeTag(args);
  let rounds = 2;
  let steps = 3;
  let only: string[] | null = null;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--rounds') rounds = Number(rest[++i]);
    else if (rest[i] === '--steps') steps = Number(rest[++i]);
    else if (rest[i] === '--only') only = (rest[++i] ?? '').split(',');
    else throw new Error(`unknown flag '${rest[i]}': use --rounds N --steps K --only name,...`);
  }
  const loadBefore = loadavg().map((x) => round(x));
  const busyBefore = await cpuBusyPercent();
  const results: Record<string, unknown>[] = [];
  for (const n of NETWORKS.filter((m) => !only || only.includes(m.name))) {
    const format: torch.MemoryFormat = n.dims === 2 ? 'channels_last' : 'channels_last_3d';
    const variants = (['contiguous', format] as torch.MemoryFormat[]).flatMap((layout) =>
      (['fp32', 'bf16'] as Precision[]).map((precision) => ({ layout, precision })),
    );
    const runs = variants.map((v) => {
      torch.manualSeed(0);
      const net = n.make().train();
      if (v.layout !== 'contiguous') net.toMemoryFormat(v.layout);
      const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, momentum: 0.99 });
      const x = torch.randn(n.input).contiguous(v.layout).keep();
      const y = torch.randint(0, 2, [n.input[0]!, ...n.input.slice(2)], { dtype: 'int64' }).keep();
      const step = () => void trainingStep(net, opt, x, y, { loss: { name: n.loss, batchDice: false }, gradClip: 0, precision: v.precision });
      timeRepeated(step, 0, 2);
      return { ...v, step, ms: [] as number[], dispose: () => [net, opt, x, y].forEach((t) => t.dispose()) };
    });
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < runs.length; i++) {
        const run = runs[(i + r) % runs.length]!;
        run.ms.push(...timeRepeated(run.step, steps));
      }
    }
    const med = (layout: string, p: Precision) => median(runs.find((r) => r.layout === layout && r.precision === p)!.ms);
    const entry = {
      network: n.name,
      input: n.input,
      medians_ms: Object.fromEntries(runs.map((r) => [`${r.layout}_${r.precision}`, round(median(r.ms), 1)])),
      channels_last_ratio_fp32: round(med(format, 'fp32') / med('contiguous', 'fp32'), 3),
      channels_last_ratio_bf16: round(med(format, 'bf16') / med('contiguous', 'bf16'), 3),
      bf16_ratio_contiguous: round(med('contiguous', 'bf16') / med('contiguous', 'fp32'), 3),
      steps_ms: Object.fromEntries(runs.map((r) => [`${r.layout}_${r.precision}`, r.ms.map((v) => round(v, 1))])),
    };
    runs.forEach((r) => r.dispose());
    console.log(
      JSON.stringify({ network: entry.network, ...entry.medians_ms, cl_fp32: entry.channels_last_ratio_fp32, cl_bf16: entry.channels_last_ratio_bf16 }),
    );
    results.push(entry);
  }
  const path = writeResult(
    'memory-format',
    args,
    {
      what: 'medseg training step (train/step.ts, AdamW, no clipping) with weights and input contiguous or channels-last, fp32 and bf16 autocast; ratios < 1: channels-last faster',
      results,
      threads: torch.getNumThreads(),
      libtorch: torch.torchVersion,
      cpu_busy_pct_before: busyBefore,
      ...(process.env.BENCH_LOAD_NOTE ? { load_note: process.env.BENCH_LOAD_NOTE } : {}),
      note: 'libtorch 1.13 returns instance_norm and conv_transpose outputs contiguous whatever the input layout, so a U-Net with instance norm converts back at every norm',
    },
    loadBefore,
    tag,
  );
  console.log(`wrote ${path}`);
}
