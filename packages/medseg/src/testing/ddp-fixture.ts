/**
 * One rank of data-parallel.test.ts, run as its own process on loopback:
 *   ddp-fixture.ts steps <rank> <world> <port> <batch> <steps> <bucketMB> <overlap 0|1>
 *     runs <steps> data-parallel steps of TinySegNet, this rank taking its
 *     <batch> samples of each global batch (globalBatch); rank 0 prints the
 *     final weights as one JSON line.
 *   ddp-fixture.ts train <rank> <world> <port> <outDir> <resume 0|1> <slowMs>
 *     trains the trainer's tiny fixture (trainer-fixture.ts) data-parallel.
 * Ranks start from different weights, so equal results also show the broadcast.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { train } from '../train/trainer.ts';
import { DataParallel, dataParallelStep } from '../train/data-parallel.ts';
import { makeOptimizer } from '../train/step.ts';
import { TinySegNet, fixtureConfig, slowedData, syntheticData } from './trainer-fixture.ts';

/** Global batch `i` of the equivalence test: `size` samples, a pure function of i. */
export function globalBatch(i: number, size: number): { image: Tensor; label: Tensor } {
  return syntheticData(11, size).nextBatch(0, i) as { image: Tensor; label: Tensor };
}

/** The equivalence test's training settings: the trainer fixture's SGD with Nesterov momentum, Dice + CE, clipping. */
export const stepConfig = { ...fixtureConfig, iterationsPerEpoch: 4, epochs: 3 };

export function weightsOf(net: torch.nn.Module): Record<string, number[]> {
  return Object.fromEntries([...net.stateDict()].map(([k, t]) => [k, t.toArray()]));
}

const fixture = fileURLToPath(import.meta.url);

export interface RankRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Starts `world` ranks of this fixture as child processes; `onStart` may act on the children (kill one). */
export async function runRanks(args: (port: number) => string[], world: number, onStart?: (children: ReturnType<typeof spawn>[]) => void): Promise<RankRun[]> {
  const port = await torch.freePort();
  const t0 = Date.now();
  const children = Array.from({ length: world }, (_, rank) =>
    spawn(process.execPath, ['--import', 'tsx', fixture, args(port)[0]!, String(rank), String(world), String(port), ...args(port).slice(1)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MEDSEG_THREADS: '1' },
    }),
  );
  const runs = children.map(
    (child) =>
      new Promise<RankRun>((resolve) => {
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d));
        child.stderr!.on('data', (d: Buffer) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
        });
      }),
  );
  onStart?.(children);
  return Promise.all(runs);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [mode, rankArg, worldArg, portArg, ...rest] = process.argv.slice(2);
  const rank = Number(rankArg);
  const worldSize = Number(worldArg);
  const group = await torch.ProcessGroup.join({ masterAddr: '127.0.0.1', masterPort: Number(portArg), rank, worldSize, timeoutMs: 20_000 });
  torch.manualSeed(7 + rank);
  const net = new TinySegNet();
  if (mode === 'steps') {
    const [b, k, bucketMB, overlap] = rest.map(Number) as [number, number, number, number];
    const dp = await DataParallel.create(group, net, { bucketMB, overlap: overlap === 1 });
    const opt = makeOptimizer(net, stepConfig);
    for (let i = 0; i < k; i++) {
      const { image, label } = torch.tidy(() => {
        const g = globalBatch(i, b * worldSize);
        return {
          image: g.image
            .narrow(0, rank * b, b)
            .contiguous()
            .keep(),
          label: g.label
            .narrow(0, rank * b, b)
            .contiguous()
            .keep(),
        };
      });
      await dataParallelStep(net, opt, dp, image, label, stepConfig);
      image.dispose();
      label.dispose();
    }
    if (rank === 0)
      process.stdout.write(
        `${JSON.stringify({ buckets: dp.bucketCount, queuedDuringBackward: dp.lastTiming.queuedDuringBackward, weights: weightsOf(net) })}\n`,
      );
    dp.dispose();
  } else {
    const [outDir, resume, slow] = rest;
    const slowed = slowedData(syntheticData(11 + 1000 * rank), Number(slow ?? 0));
    await train(net, stepConfig, slowed, outDir!, {
      resume: resume === '1',
      progress: { start() {}, update() {}, stop() {} },
      distributed: { group },
    });
  }
  await group.destroy();
}
