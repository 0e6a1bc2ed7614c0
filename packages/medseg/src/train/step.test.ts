/**
 * The training step in bf16 mixed precision: the medseg U-Net's loss and
 * gradients (deep supervision, Dice + CE) against the fp32 step from the same
 * weights and batch, fp32 master weights through the optimizer, and a few
 * bf16 steps fitting a batch as fp32 steps do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { smallConfig } from '../testing/models.ts';
import { deepSupervisionLoss } from './losses.ts';
import { forwardIn, makeOptimizer, trainingStep } from './step.ts';
import type { Precision } from '../plan/types.ts';

const LOSS = { name: 'dice_ce', batchDice: false } as const;

function batch(dims: 2 | 3, seed: number): { x: Tensor; y: Tensor } {
  const g = new torch.Generator(seed);
  const spatial = dims === 2 ? [32, 32] : [16, 16, 16];
  return torch.tidy(() => {
    const x = torch.randn([2, 1, ...spatial], { generator: g });
    // A learnable label: where the image is bright.
    const y = x.gt(0.3).long().squeeze(1);
    return { x: x.keep(), y: y.keep() };
  });
}

/** Loss and flattened gradient of every parameter, in one precision. */
function lossAndGrads(net: ReturnType<typeof createNetwork>, x: Tensor, y: Tensor, precision: Precision): { loss: number; grads: Float32Array[] } {
  return torch.tidy(() => {
    for (const p of net.parameters()) p.grad = null;
    const loss = deepSupervisionLoss(forwardIn(precision, net, x), y, LOSS);
    assert.equal(loss.dtype, 'float32');
    loss.backward();
    // A head the loss weighs 0 (the lowest deep-supervision output) gets no gradient.
    return { loss: loss.item(), grads: net.parameters().map((p) => p.grad?.toFloat32Array() ?? new Float32Array(p.numel)) };
  });
}

for (const dims of [2, 3] as const) {
  test(`bf16 step, ${dims}D U-Net with deep supervision: loss and gradients agree with fp32 within bf16 precision`, () => {
    torch.manualSeed(11);
    const net = createNetwork(smallConfig('unet', dims, { features: [8, 16, 32] })).train();
    const { x, y } = batch(dims, 5);
    try {
      const f32 = lossAndGrads(net, x, y, 'fp32');
      const b16 = lossAndGrads(net, x, y, 'bf16');
      assert.ok(Math.abs(b16.loss - f32.loss) <= 1e-2 * Math.abs(f32.loss), `loss bf16 ${b16.loss} vs fp32 ${f32.loss}`);
      let dot = 0;
      let n16 = 0;
      let n32 = 0;
      let diff = 0;
      f32.grads.forEach((g, j) => {
        const h = b16.grads[j]!;
        for (let i = 0; i < g.length; i++) {
          dot += g[i]! * h[i]!;
          n32 += g[i]! * g[i]!;
          n16 += h[i]! * h[i]!;
          diff += (g[i]! - h[i]!) ** 2;
        }
      });
      const cosine = dot / Math.sqrt(n16 * n32);
      const rel = Math.sqrt(diff / n32);
      // Without native bf16 (AVX512_BF16/AMX) libtorch's bf16 kernels round
      // more intermediate results to bf16: cosine 0.969 (2D) / 0.975 (3D) on an
      // AVX2 EPYC. The planner never trains in bf16 on such a CPU.
      const minCosine = torch.bf16Support().native ? 0.99 : 0.95;
      assert.ok(cosine >= minCosine, `gradient cosine bf16 vs fp32: ${cosine}`);
      assert.ok(rel > 1e-4, `bf16 gradients equal fp32 (${rel}): did autocast run?`);
    } finally {
      net.dispose();
      x.dispose();
      y.dispose();
    }
  });
}

test('bf16 steps keep fp32 master weights and fit a batch as the fp32 steps do', () => {
  const run = (precision: Precision): { losses: number[]; dtypes: string[] } => {
    torch.manualSeed(3);
    const net = createNetwork(smallConfig('unet', 2, { features: [8, 16, 32] })).train();
    const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 3e-3, weightDecay: 0.01, momentum: 0.99 });
    const { x, y } = batch(2, 9);
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) losses.push(trainingStep(net, opt, x, y, { loss: LOSS, gradClip: 12, precision }));
    const dtypes = [...new Set(net.parameters().map((p) => p.dtype))];
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
    return { losses, dtypes };
  };
  const live = torch.liveTensors();
  const f32 = run('fp32');
  const b16 = run('bf16');
  assert.equal(torch.liveTensors(), live, 'a step leaked tensors');
  assert.deepEqual(b16.dtypes, ['float32']);
  assert.equal(torch.isAutocastEnabled(), false);
  const drop = (l: number[]) => l.at(-1)! / l[0]!;
  assert.ok(drop(b16.losses) < 0.8, `bf16 loss ${b16.losses[0]} -> ${b16.losses.at(-1)}`);
  assert.ok(Math.abs(drop(b16.losses) - drop(f32.losses)) < 0.1, `bf16 fits ${drop(b16.losses)} of its first loss, fp32 ${drop(f32.losses)}`);
});

test('every architecture (2D and 3D, instance / batch / group norm) trains a bf16 step with a loss within 2 % of fp32', async () => {
  const { listArchitectures } = await import('../models/registry.ts');
  const failures: string[] = [];
  for (const { name } of listArchitectures()) {
    for (const dims of [2, 3] as const) {
      for (const norm of ['instance', 'batch', 'group'] as const) {
        const extra =
          name === 'swin-unetr'
            ? { window: new Array(dims).fill(2) }
            : name === 'transunet'
              ? { depth: 1 }
              : name === 'hybridnet'
                ? { depth: 1, transformerStages: 2 }
                : {};
        const loss = (precision: Precision): number => {
          torch.manualSeed(21);
          const net = createNetwork(smallConfig(name, dims, { extra, norm })).train();
          const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, momentum: 0.99 });
          const { x, y } = batch(dims, 13);
          try {
            return trainingStep(net, opt, x, y, { loss: LOSS, gradClip: 12, precision });
          } finally {
            [net, opt, x, y].forEach((t) => t.dispose());
          }
        };
        const tag = `${name} ${dims}D ${norm}`;
        try {
          const f32 = loss('fp32');
          const b16 = loss('bf16');
          if (!(Math.abs(b16 - f32) <= 0.02 * Math.abs(f32))) failures.push(`${tag}: loss bf16 ${b16} vs fp32 ${f32}`);
        } catch (e) {
          failures.push(`${tag}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    }
  }
  assert.deepEqual(failures, []);
});

test('a 2D U-Net step with the skeleton-recall term (fp32 and bf16): the loss includes it, fits the batch, and leaks nothing', () => {
  const withSkeleton = { ...LOSS, skeletonRecall: 1 };
  const live = torch.liveTensors();
  for (const precision of ['fp32', 'bf16'] as const) {
    torch.manualSeed(3);
    const net = createNetwork(smallConfig('unet', 2, { features: [8, 16, 32] })).train();
    const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 3e-3, weightDecay: 0.01, momentum: 0.99 });
    const { x, y } = batch(2, 9);
    // From the same weights the term adds a positive amount (1 - recall of a random net's softmax on the skeletons).
    const plain = torch.tidy(() => deepSupervisionLoss(forwardIn(precision, net, x), y, LOSS).item());
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) losses.push(trainingStep(net, opt, x, y, { loss: withSkeleton, gradClip: 12, precision }));
    assert.ok(losses[0]! > plain + 0.05, `${precision}: with the term ${losses[0]}, without ${plain}`);
    assert.ok(losses.every(Number.isFinite) && losses.at(-1)! < 0.8 * losses[0]!, `${precision}: ${losses[0]} -> ${losses.at(-1)}`);
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
  }
  assert.equal(torch.liveTensors(), live, 'a step leaked tensors');
});
