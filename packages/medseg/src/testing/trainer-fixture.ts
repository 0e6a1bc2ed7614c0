/**
 * A tiny deterministic training setup for the trainer's tests (run in a child
 * process so a test can SIGKILL it): a 3D conv net and synthetic batches that
 * are a pure function of (epoch, iteration).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { PreprocessedCase } from '../data/types.ts';
import { train, type TrainerConfig, type TrainingData } from '../train/trainer.ts';

const { nn, F } = torch;

export class TinySegNet extends nn.Module {
  c1 = this.module('c1', new nn.Conv3d(1, 6, 3, { padding: 1 }));
  n1 = this.module('n1', new nn.InstanceNorm(6, { affine: true }));
  c2 = this.module('c2', new nn.Conv3d(6, 2, 1));
  forward(x: Tensor): Tensor {
    return this.c2.forward(F.leakyRelu(this.n1.forward(this.c1.forward(x))));
  }
}

/** A sphere of radius r at a seeded random centre, plus noise; label = the sphere. */
function sample(gen: torch.Generator, size: number): { image: Tensor; label: Tensor } {
  return torch.tidy(() => {
    const c = torch
      .rand([3], { generator: gen })
      .mul(size / 2)
      .add(size / 4)
      .toArray();
    const r = 3 + torch.rand([1], { generator: gen }).item() * 3;
    const ax = torch.arange(0, size, 1, { dtype: 'float32' });
    const dz = ax.sub(c[0]!).pow(2).reshape([size, 1, 1]);
    const dy = ax.sub(c[1]!).pow(2).reshape([1, size, 1]);
    const dx = ax.sub(c[2]!).pow(2).reshape([1, 1, size]);
    const inside = dz
      .add(dy)
      .add(dx)
      .le(r * r);
    const noise = torch.randn([size, size, size], { generator: gen }).mul(0.3);
    return { image: inside.float().add(noise).unsqueeze(0), label: inside.to('uint8') };
  });
}

export const SIZE = 16;

export function syntheticData(seed: number, batch = 2): TrainingData {
  const validation: PreprocessedCase[] = [0, 1].map((i) =>
    torch.tidy(() => {
      const s = sample(new torch.Generator(seed + 1000 + i), SIZE);
      return {
        id: `val${i}`,
        data: s.image.toTypedArray() as Float32Array,
        label: s.label.toTypedArray() as Uint8Array,
        channels: 1,
        shape: [SIZE, SIZE, SIZE] as [number, number, number],
        spacing: [1, 1, 1] as [number, number, number],
        properties: {} as PreprocessedCase['properties'],
      };
    }),
  );
  return {
    validation,
    nextBatch(epoch, it) {
      const gen = new torch.Generator(seed * 100003 + epoch * 1009 + it);
      return torch.tidy(() => {
        const items = Array.from({ length: batch }, () => sample(gen, SIZE));
        return { image: torch.stack(items.map((s) => s.image)), label: torch.stack(items.map((s) => s.label)).long() };
      });
    },
  };
}

export const fixtureConfig: TrainerConfig = {
  epochs: 4,
  iterationsPerEpoch: 6,
  optimizer: 'sgd',
  lr: 0.05,
  weightDecay: 3e-5,
  momentum: 0.9,
  schedule: 'poly',
  warmupEpochs: 0,
  loss: { name: 'dice_ce' },
  gradClip: 12,
  checkpointEvery: 1,
  earlyStoppingPatience: 0,
  timeBudgetMinutes: 0,
  precision: 'fp32',
  patchSize: [SIZE, SIZE, SIZE],
  numClasses: 2,
};

/** `data` with every batch `slowMs` late (so a test can kill a run mid-epoch). */
export function slowedData(data: TrainingData, slowMs: number): TrainingData {
  return {
    ...data,
    async nextBatch(e, i) {
      if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
      return data.nextBatch(e, i);
    },
  };
}

// Child-process entry: `node --import tsx testing/trainer-fixture.ts <outDir> <resume 0|1> <slowMs>`
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [outDir, resume, slow] = process.argv.slice(2);
  torch.manualSeed(7);
  const net = new TinySegNet();
  const slowed = slowedData(syntheticData(11), Number(slow ?? 0));
  await train(net, fixtureConfig, slowed, outDir!, { resume: resume === '1', progress: { start() {}, update() {}, stop() {} } });
}
