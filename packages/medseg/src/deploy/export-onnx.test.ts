/**
 * ONNX parity for every architecture of the registry, 2D and 3D: the
 * exported model run by onnxruntime-node against the libtorch forward on
 * real patches (DRIVE RGB crops for 2D, MSD hippocampus crops for 3D), at
 * batch 1 and 2, and at a second spatial size where the spatial axes stay
 * dynamic. Small widths keep the suite quick; the norms and decoders vary
 * across architectures so every mapping is exercised.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { createNetwork, listArchitectures } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { driveCrop, emCrop, hippocampusCrop, smallConfig, smallExtra } from '../testing/models.ts';
import { exportOnnx, UnsupportedOpError } from './export-onnx.ts';
import { describeOnnx, IR_VERSION, OPSET } from './onnx-builder.ts';

torch.manualSeed(3);

const TOLERANCE = 1e-4;
const NORMS = ['instance', 'batch', 'group'] as const;

function config(arch: string, dims: 2 | 3, i: number): NetworkConfig {
  const extra = smallExtra(arch, dims);
  return smallConfig(arch, dims, {
    inChannels: dims === 2 ? 3 : 1,
    numClasses: 3,
    norm: NORMS[(i + dims) % 3]!,
    upsample: (i + dims) % 2 ? 'interpolate' : 'transpose',
    deepSupervision: true,
    extra,
  });
}

async function onnxForward(session: ort.InferenceSession, x: Tensor): Promise<Float32Array> {
  const out = await session.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) });
  return out.logits!.data as Float32Array;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'output sizes differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Running statistics that are not the defaults, from a few training-mode passes. */
function warmBatchNorm(net: SegmentationNetwork, x: Tensor): void {
  if (net.config.norm !== 'batch') return;
  net.train();
  for (let i = 0; i < 3; i++) torch.tidy(() => torch.noGrad(() => net.forward(x)));
  net.eval();
}

// Real patches: two different crops per dimensionality (batch 2), and a larger one for the dynamic spatial check.
const patches2d = async () => ({
  a: (await driveCrop(32, 21, 260, 260)).image,
  b: (await driveCrop(32, 22, 300, 200)).image,
  big: (await driveCrop(48, 23, 250, 280)).image.narrow(3, 0, 32).contiguous(),
});
const patches3d = async () => ({
  a: (await hippocampusCrop([16, 16, 16])).image,
  b: (await hippocampusCrop([16, 16, 16], 'hippocampus_003')).image,
  big: (await hippocampusCrop([24, 32, 16], 'hippocampus_006')).image,
});

const measured: string[] = [];
const names = listArchitectures().map((a) => a.name);

names.forEach((arch, i) => {
  for (const dims of [2, 3] as const) {
    test(`${arch} ${dims}D: onnxruntime matches libtorch within ${TOLERANCE} on real patches at batch 1 and 2 (and another size where spatial axes are dynamic)`, async () => {
      const p = dims === 2 ? await patches2d() : await patches3d();
      const net = createNetwork(config(arch, dims, i));
      try {
        warmBatchNorm(net, torch.cat([p.a, p.b]));
        net.eval();
        const e = exportOnnx(net, { input: p.a });
        const d = describeOnnx(e.bytes);
        assert.equal(d.opset, OPSET);
        assert.equal(d.irVersion, IR_VERSION);
        assert.equal(e.inputShape[0], 'batch', 'the batch axis is dynamic');
        assert.equal(e.outputShape[0], 'batch');
        assert.equal(e.outputShape[1], 3);
        const session = await ort.InferenceSession.create(e.bytes);
        const diffs: string[] = [];
        const check = async (x: Tensor, label: string) => {
          const want = torch.tidy(() => (torch.noGrad(() => net.forward(x)) as Tensor).toFloat32Array());
          const diff = maxAbsDiff(await onnxForward(session, x), want);
          diffs.push(`${label} ${diff.toExponential(1)}`);
          assert.ok(diff <= TOLERANCE, `${label}: max abs difference ${diff}`);
        };
        await check(p.a, 'b1');
        const pair = torch.cat([p.a, p.b]);
        await check(pair, 'b2');
        pair.dispose();
        const spatialFixed = e.fixedAxes.map((f) => f.name);
        if (spatialFixed.length === 0) {
          assert.deepEqual(e.inputShape.slice(2), dims === 3 ? ['d', 'h', 'w'] : ['h', 'w']);
          await check(p.big, `[${p.big.shape.slice(2)}]`);
        } else {
          // Only the architectures whose graph changes with the size keep it fixed, and they say why.
          assert.ok(['transunet', 'swin-unetr'].includes(arch), `${arch} fixed ${spatialFixed.join(', ')}: ${e.fixedAxes.map((f) => f.reason).join('; ')}`);
          assert.deepEqual(e.inputShape.slice(2), p.a.shape.slice(2));
          assert.ok(e.fixedAxes.every((f) => f.reason.length > 10));
          await assert.rejects(onnxForward(session, p.big), /invalid dimensions|Got/);
        }
        measured.push(`${arch} ${dims}D: ${diffs.join(', ')}${spatialFixed.length ? ` (spatial fixed: ${e.fixedAxes[0]!.reason})` : ''}`);
        await session.release();
      } finally {
        net.dispose();
        torch.dispose(p);
      }
    });
  }
});

class Cumulative extends torch.nn.UnaryModule {
  forward(x: Tensor): Tensor {
    return x.cumsum(1);
  }
}
class WithUnmapped extends torch.nn.UnaryModule {
  conv = this.module('conv', new torch.nn.Conv2d(1, 2, 3, { padding: 1 }));
  head = this.module('head', new Cumulative());
  forward(x: Tensor): Tensor {
    return this.head.forward(this.conv.forward(x));
  }
}

test('an op without an ONNX mapping is refused with a typed error naming the op and the module', () => {
  const net = new WithUnmapped();
  const x = torch.randn([1, 1, 8, 8]);
  assert.throws(
    () => exportOnnx(net, { input: x }),
    (e: unknown) => e instanceof UnsupportedOpError && e.op === 'aten::cumsum' && e.scope === 'head' && /aten::cumsum.*module 'head'/.test(e.message),
  );
  x.dispose();
  net.dispose();
});

test('a forward that returns several tensors is refused (export the logits)', () => {
  const net = createNetwork(smallConfig('unet', 2));
  const x = torch.randn([1, 1, 16, 16]);
  assert.throws(() => exportOnnx(net, { input: x, forward: (t) => (net.train(), net.forward(t)) as unknown as Tensor }), /returns 2 tensors/);
  x.dispose();
  net.dispose();
});

test('measured parity', (t) => {
  for (const line of measured) t.diagnostic(line);
  assert.equal(measured.length, names.length * 2, 'every architecture was measured in 2D and 3D');
});

/** Ops the architectures do not use, in one forward: pools, pad, slices, chunk/stack, comparisons, masks, reductions, linear algebra. */
class OpMix extends torch.nn.UnaryModule {
  lin = this.module('lin', new torch.nn.Linear(4, 3));
  forward(x: Tensor): Tensor {
    const { F } = torch;
    const pooled = torch.cat([F.maxPool(x, 2), F.avgPool(x, 2)], 1); // [N, 8, H/2, W/2]
    const padded = F.pad(pooled, [1, 1, 2, 0]).slice(2, 1, 5).narrow(3, 0, 4); // [N, 8, 4, 4]
    const g = padded.clamp(-0.5, 0.5).pow(2).add(padded.sigmoid()).sub(0.3).div(2).rsub(1);
    const [a, b] = g.chunk(2, 1) as [Tensor, Tensor];
    const stacked = torch.stack([a, b.neg().abs().sqrt()], 1).sum([1]); // [N, 4, 4, 4]
    const masked = stacked.maskedFill(stacked.lt(0.55), 0).add(torch.where(stacked.ge(0.6), stacked, stacked.mul(-1)));
    const probs = F.logSoftmax(masked, 1).exp();
    const tokens = probs.flatten(2).transpose(1, 2); // [N, 16, 4]
    const mixed = this.lin.forward(tokens).matmul(tokens.slice(1, 0, 3)); // [N, 16, 4]
    const picked = mixed.indexSelect(1, torch.tensor([0, 5, 9], [3], { dtype: 'int64' })).select(2, 1); // [N, 3]
    const pooledAll = F.adaptiveAvgPool(x, 1).flatten(1); // [N, 4]
    return picked
      .unsqueeze(2)
      .expand([picked.size(0), 3, 4])
      .add(pooledAll.unsqueeze(1))
      .mean([2], true)
      .squeeze(2);
  }
}

test('mappings the architectures do not reach (pools, pad, slices, chunk/stack, comparisons, masks, index_select, expand) match libtorch', async () => {
  const net = new OpMix().eval();
  const x = (await driveCrop(16, 21, 300, 300)).image.narrow(1, 0, 1).repeat([1, 4, 1, 1]).contiguous();
  const e = exportOnnx(net, { input: x });
  const used = [
    'MaxPool',
    'AveragePool',
    'Pad',
    'Slice',
    'Split',
    'Clip',
    'Pow',
    'Less',
    'GreaterOrEqual',
    'Where',
    'LogSoftmax',
    'Gather',
    'Expand',
    'GlobalAveragePool',
  ];
  assert.deepEqual(
    used.filter((op) => !e.opCounts[op]),
    [],
    'every mapping of the mix is in the graph',
  );
  const session = await ort.InferenceSession.create(e.bytes);
  for (const input of [x, torch.cat([x, x.flip([3])])]) {
    const want = torch.tidy(() => torch.noGrad(() => net.forward(input)).toFloat32Array());
    const diff = maxAbsDiff(await onnxForward(session, input), want);
    assert.ok(diff <= TOLERANCE, `[${input.shape}]: ${diff}`);
  }
  await session.release();
  x.dispose();
  net.dispose();
});

/** Splits the last spatial axis in two halves: ONNX's Split takes the sizes as numbers, so that axis must stay fixed. */
class HalvesAlongWidth extends torch.nn.UnaryModule {
  conv = this.module('conv', new torch.nn.Conv2d(1, 2, 3, { padding: 1 }));
  forward(x: Tensor): Tensor {
    const [left, right] = this.conv.forward(x).chunk(2, 3) as [Tensor, Tensor];
    return left.sub(right.flip([3]));
  }
}

test('an op that needs a dynamic size as a number fixes that axis only, and says which op', async () => {
  const net = new HalvesAlongWidth();
  const x = (await emCrop(16)).image;
  const e = exportOnnx(net, { input: x });
  assert.deepEqual(e.inputShape, ['batch', 1, 'h', 16]);
  assert.deepEqual(
    e.fixedAxes.map((f) => [f.name, f.size]),
    [['w', 16]],
  );
  assert.match(e.fixedAxes[0]!.reason, /aten::chunk in module '<root>' needs a fixed w/);
  const session = await ort.InferenceSession.create(e.bytes);
  const taller = torch.cat([x, x.flip([2])], 2);
  const want = torch.tidy(() => torch.noGrad(() => net.forward(taller)).toFloat32Array());
  assert.ok(maxAbsDiff(await onnxForward(session, taller), want) <= TOLERANCE);
  await session.release();
  torch.dispose([x, taller]);
  net.dispose();
});
