/**
 * One rank of bench/ddp.ts, run as its own process:
 *   ddp-rank.ts train <rank> <world> <port> <json: {channels, patch, batch, warmup, steps, overlap, bucketMB}>
 *     times training steps of the 3D bench U-Net on fixed random data: with a
 *     world of 1 the plain training step (no group), else the data-parallel
 *     step; prints {stepMs[], waitMs[], gradientMB, buckets} (rank 0).
 *   ddp-rank.ts allreduce <rank> <world> <port> <json: {sizesMB, warmup, repeats}>
 *     times all-reduces of fp32 buffers of each size; prints {ms: {size: [..]}} (rank 0).
 */
import { performance } from 'node:perf_hooks';
import * as torch from '@medseg/torch';
import { makeOptimizer, trainingStep } from '../../packages/medseg/src/train/step.ts';
import { DataParallel, dataParallelStep } from '../../packages/medseg/src/train/data-parallel.ts';
import { BenchUNet } from './unet.ts';

interface TrainArgs {
  channels: number[];
  patch: number[];
  batch: number;
  warmup: number;
  steps: number;
  overlap: boolean;
  bucketMB: number;
}

interface AllReduceArgs {
  sizesMB: number[];
  warmup: number;
  repeats: number;
}

const [mode, rankArg, worldArg, portArg, json] = process.argv.slice(2);
const rank = Number(rankArg);
const worldSize = Number(worldArg);
const group =
  worldSize > 1 ? await torch.ProcessGroup.join({ masterAddr: '127.0.0.1', masterPort: Number(portArg), rank, worldSize, timeoutMs: 120_000 }) : null;

if (mode === 'train') {
  const a = JSON.parse(json!) as TrainArgs;
  torch.manualSeed(rank);
  const net = new BenchUNet(3, a.channels, 1).train();
  const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, momentum: 0 });
  const x = torch.randn([a.batch, 1, ...a.patch]).keep();
  const y = torch.randint(0, 2, [a.batch, ...a.patch], { dtype: 'int64' }).keep();
  const settings = { loss: { name: 'dice_ce' as const }, gradClip: 12 };
  const dp = group ? await DataParallel.create(group, net, { overlap: a.overlap, bucketMB: a.bucketMB }) : null;
  const stepMs: number[] = [];
  const waitMs: number[] = [];
  for (let i = 0; i < a.warmup + a.steps; i++) {
    const t0 = performance.now();
    if (dp) await dataParallelStep(net, opt, dp, x, y, settings);
    else trainingStep(net, opt, x, y, settings);
    if (i >= a.warmup) {
      stepMs.push(performance.now() - t0);
      waitMs.push(dp ? dp.lastTiming.waitSeconds * 1000 : 0);
    }
  }
  const gradientMB = net.parameters().reduce((s, p) => s + p.numel * 4, 0) / 2 ** 20;
  if (rank === 0) process.stdout.write(`${JSON.stringify({ stepMs, waitMs, gradientMB, buckets: dp?.bucketCount ?? 0 })}\n`);
  dp?.dispose();
} else if (mode === 'allreduce') {
  const a = JSON.parse(json!) as AllReduceArgs;
  if (!group) throw new Error('allreduce needs a world of 2 or more');
  const ms: Record<string, number[]> = {};
  for (const mb of a.sizesMB) {
    const t = torch.ones([Math.round((mb * 2 ** 20) / 4)]).keep();
    ms[mb] = [];
    for (let i = 0; i < a.warmup + a.repeats; i++) {
      await group.barrier();
      const t0 = performance.now();
      await group.allReduceSum([t]);
      if (i >= a.warmup) ms[mb].push(performance.now() - t0);
    }
    t.dispose();
  }
  if (rank === 0) process.stdout.write(`${JSON.stringify({ ms })}\n`);
}
await group?.destroy();
