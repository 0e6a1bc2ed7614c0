/**
 * The architecture zoo at the hippocampus plan's size: for each architecture,
 * parameters, MACs of one forward (batch 1), training-step time (batch 2,
 * cross-entropy over the deep-supervision heads, Adam) and inference time per
 * patch (batch 1, eval, no grad), median of `reps` after one warm-up. Peer in
 * the same run: the same U-Net in PyTorch (bench/py/models_peer.py), so the
 * U-Net row carries a time ratio against PyTorch.
 *
 *   npm run bench -- models [--reps 3] [--only unet,hybridnet]
 *
 * Plan-like config (3D, patch 40x56x40, features [32, 64, 128, 256], strides
 * [[1,1,1],[2,2,2],[2,2,2],[2,2,2]], instance norm, deep supervision, 3
 * classes): nnU-Net's plan for MSD hippocampus, fixed so results stay
 * comparable across runs.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../packages/medseg/src/plan/types.ts';
import { architectureInfo, countMACs, countParameters, createNetwork, listArchitectures } from '../packages/medseg/src/models/registry.ts';
import { writeResult } from './lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PATCH = [40, 56, 40];
const FEATURES = [32, 64, 128, 256];
const STRIDES = [
  [1, 1, 1],
  [2, 2, 2],
  [2, 2, 2],
  [2, 2, 2],
];
const CLASSES = 3;

function planConfig(architecture: string): NetworkConfig {
  const extra: Record<string, unknown> =
    architecture === 'transunet'
      ? { inputSize: PATCH, depth: 4, heads: 8 }
      : architecture === 'swin-unetr'
        ? { window: [5, 7, 5] }
        : architecture === 'hybridnet'
          ? { depth: 2, heads: 8 }
          : {};
  return {
    architecture,
    dims: 3,
    inChannels: 1,
    numClasses: CLASSES,
    features: FEATURES,
    kernelSizes: FEATURES.map(() => [3, 3, 3]),
    strides: STRIDES,
    deepSupervision: true,
    norm: 'instance',
    extra,
  };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

function timed(reps: number, fn: () => void): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

function measure(arch: string, reps: number) {
  const net = createNetwork(planConfig(arch));
  const params = countParameters(net);
  const macs = countMACs(net, PATCH);
  const opt = new torch.optim.Adam(net.parameters(), { lr: 1e-3 });
  const x1 = torch.randn([1, 1, ...PATCH]).keep();
  const x2 = torch.randn([2, 1, ...PATCH]).keep();
  const y2 = torch.randint(0, CLASSES, [2, ...PATCH]).keep();
  const train = () =>
    torch.tidy(() => {
      net.train();
      opt.zeroGrad();
      const outs = net.forward(x2);
      const list = Array.isArray(outs) ? outs : [outs];
      let loss: Tensor | null = null;
      for (const o of list) {
        const size = o.shape.slice(2);
        const t = size.join() === PATCH.join() ? y2 : torch.F.interpolate(y2.unsqueeze(1).float(), { size, mode: 'nearest' }).squeeze(1).long();
        const l = torch.F.crossEntropy(o, t);
        loss = loss ? loss.add(l) : l;
      }
      loss!.backward();
      opt.step();
    });
  const infer = () =>
    torch.tidy(() => {
      net.eval();
      torch.noGrad(() => net.forward(x1));
    });
  const trainStep = timed(reps, train);
  const inference = timed(reps, infer);
  opt.dispose();
  net.dispose();
  for (const t of [x1, x2, y2]) t.dispose();
  return { params, macs, trainStep, inference };
}

export async function main(args: string[]): Promise<void> {
  const loadBefore = loadavg();
  const repsArg = args.indexOf('--reps');
  const reps = repsArg >= 0 ? Number(args[repsArg + 1]) : 3;
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? args[onlyArg + 1]!.split(',') : null;
  torch.manualSeed(0);
  const rows: Record<string, unknown>[] = [];
  console.log(`patch ${PATCH.join('x')}, features [${FEATURES}], strides ${JSON.stringify(STRIDES)}, ${torch.getNumThreads()} threads, median of ${reps}`);
  console.log('architecture     type             params(M)  GMACs   train step (s, b=2)  inference (s, b=1)');
  for (const { name } of listArchitectures()) {
    if (only && !only.includes(name)) continue;
    const r = measure(name, reps);
    const row = {
      architecture: name,
      type: architectureInfo(name).type,
      params: r.params,
      macs: r.macs,
      trainStepSeconds: r.trainStep,
      inferenceSeconds: r.inference,
    };
    rows.push(row);
    console.log(
      `${name.padEnd(16)} ${row.type.padEnd(16)} ${(r.params / 1e6).toFixed(2).padStart(9)} ${(r.macs / 1e9).toFixed(2).padStart(6)}   ${r.trainStep.toFixed(3).padStart(18)}  ${r.inference.toFixed(3).padStart(18)}`,
    );
  }
  if (!only || only.includes('unet')) {
    const out = execFileSync(
      '/usr/bin/python3',
      [
        join(here, 'py', 'models_peer.py'),
        JSON.stringify({ features: FEATURES, strides: STRIDES, patch: PATCH, classes: CLASSES, reps, threads: torch.getNumThreads() }),
      ],
      { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } },
    );
    const peer = JSON.parse(out) as Record<string, number>;
    const u = rows.find((r) => r.architecture === 'unet')!;
    // Re-measure the U-Net right before the peer so both see the same machine load (the first row also pays warm-up).
    const again = measure('unet', reps);
    u.firstPass = { trainStepSeconds: u.trainStepSeconds, inferenceSeconds: u.inferenceSeconds };
    u.trainStepSeconds = again.trainStep;
    u.inferenceSeconds = again.inference;
    const ratio = { trainStep: (u.trainStepSeconds as number) / peer.train_step_s!, inference: (u.inferenceSeconds as number) / peer.infer_s! };
    u.pytorchPeer = { ...peer, ratioTrainStep: ratio.trainStep, ratioInference: ratio.inference };
    console.log(
      `U-Net re-measured: train step ${again.trainStep.toFixed(3)} s, inference ${again.inference.toFixed(3)} s. PyTorch U-Net: params ${(peer.params! / 1e6).toFixed(2)}M, train step ${peer.train_step_s!.toFixed(3)} s, inference ${peer.infer_s!.toFixed(3)} s; medseg/PyTorch ratio train ${ratio.trainStep.toFixed(2)}, inference ${ratio.inference.toFixed(2)}`,
    );
  }
  const path = writeResult(
    'models',
    args,
    {
      config: {
        patch: PATCH,
        features: FEATURES,
        strides: STRIDES,
        classes: CLASSES,
        norm: 'instance',
        deepSupervision: true,
        threads: torch.getNumThreads(),
        reps,
      },
      macsDefinition:
        'multiply-accumulates of one forward at batch 1: conv, transposed conv, linear, attention matmuls (see models/blocks-macs.ts countMacsOf)',
      rows,
    },
    loadBefore,
  );
  console.log(`wrote ${path}`);
}
