/**
 * Pruning on small networks of the registry. Magnitude pruning: the zeros
 * counted here reach the target, the threshold recomputed here from the
 * original weights separates what went from what stayed (untouched), and
 * biases, norms and heads keep every value. Channel pruning: the pruned
 * network against the masked original (the full network with every weight
 * that reads a removed channel zeroed, so those channels reach nothing), in
 * libtorch for the eval output and every deep-supervision head, and in
 * onnxruntime for the exported pruned network; parameters and MACs against
 * a U-Net built with half the widths, for every architecture of the
 * registry; a pruned network quantized to int8 in onnxruntime.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { countMACs, countParameters, createNetwork } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { hippocampusCrop, smallConfig, smallExtra } from '../testing/models.ts';
import { exportOnnx } from './export-onnx.ts';
import { optimizedOpCounts, quantizeInt8 } from './quantize.ts';
import { pruneChannels, pruneMagnitude, PruneError, type TensorSlice } from './prune.ts';

torch.manualSeed(17);

const { nn } = torch;

/** An independent copy of a network: the same config, the same weights. */
function copyOf(net: SegmentationNetwork): SegmentationNetwork {
  const c = createNetwork(net.config);
  c.loadStateDict(net.stateDict());
  return c.eval();
}

const snapshot = (net: torch.nn.Module): Map<string, Float32Array> => new Map([...net.stateDict()].map(([k, t]) => [k, t.toFloat32Array()]));

async function ortLogits(model: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model);
  try {
    return (await s.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).logits!.data as Float32Array;
  } finally {
    await s.release();
  }
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('magnitude pruning', () => {
  for (const scope of ['global', 'layer'] as const) {
    test(`${scope} threshold: the target sparsity over the conv weights, the largest weights untouched, biases, norms and heads kept`, () => {
      const net = createNetwork(smallConfig('unet', 3, { numClasses: 3 })).eval();
      try {
        const before = snapshot(net);
        // The pruned layers, found here from the modules: every conv and transposed conv but the 1x1 logits heads.
        const convs = net
          .namedModules()
          .filter(([name, m]) => (m instanceof nn.ConvNd || m instanceof nn.ConvTransposeNd) && !name.startsWith('seg_heads'))
          .map(([name]) => `${name}.weight`);
        const sparsity = 0.6;
        const { summary } = pruneMagnitude(net, [1, 1, 16, 16, 16], { sparsity, scope });
        assert.deepEqual(summary.layers!.map((l) => l.name).sort(), [...convs].sort());
        assert.deepEqual(summary.heads.sort(), ['seg_heads.0.weight', 'seg_heads.1.weight']);
        const after = snapshot(net);
        const thresholds = new Map<string, number>();
        if (scope === 'global') {
          const all = convs.flatMap((n) => [...before.get(n)!].map(Math.abs)).sort((a, b) => a - b);
          const k = Math.round(sparsity * all.length);
          for (const n of convs) thresholds.set(n, all[k - 1]!);
          const zeros = convs.reduce((a, n) => a + after.get(n)!.filter((v) => v === 0).length, 0);
          assert.equal(zeros, k, 'exactly the target count of zeros');
        } else {
          for (const n of convs) {
            const w = [...before.get(n)!].map(Math.abs).sort((a, b) => a - b);
            const k = Math.round(sparsity * w.length);
            thresholds.set(n, w[k - 1]!);
            assert.equal(after.get(n)!.filter((v) => v === 0).length, k, `${n}: target zeros`);
          }
        }
        for (const [name, w] of after) {
          const orig = before.get(name)!;
          const t = thresholds.get(name);
          if (t === undefined) {
            assert.deepEqual(w, orig, `${name} is not pruned`);
            continue;
          }
          for (let i = 0; i < w.length; i++) {
            if (Math.abs(orig[i]!) > t) assert.equal(w[i], orig[i], `${name}[${i}] above the threshold is untouched`);
            else assert.ok(w[i] === 0 || Math.abs(orig[i]!) === t, `${name}[${i}] below the threshold is zero`);
          }
        }
        assert.ok(summary.parameters.after < summary.parameters.before);
      } finally {
        net.dispose();
      }
    });
  }

  test('a sparsity outside [0, 1) is a PruneError', () => {
    const net = createNetwork(smallConfig('unet', 2));
    try {
      for (const s of [1, -0.1, Number.NaN]) assert.throws(() => pruneMagnitude(net, [1, 1, 16, 16], { sparsity: s }), PruneError);
      assert.throws(() => pruneChannels(net, [1, 1, 16, 16], { sparsity: 1.5, structured: true }), PruneError);
    } finally {
      net.dispose();
    }
  });
});

/** The masked original: every weight axis that read a removed channel has those indices zeroed. */
function mask(net: SegmentationNetwork, slices: TensorSlice[]): void {
  const state = net.stateDict();
  torch.noGrad(() => {
    for (const s of slices) {
      if (s.role !== 'in') continue;
      const t = state.get(s.name)!;
      for (const c of s.removed)
        torch.tidy(() => {
          t.narrow(s.axis, c, 1).zero_();
        });
    }
  });
}

/** Outputs of every deep-supervision head: the root alone in training mode (norms stay in eval mode). */
function heads(net: SegmentationNetwork, x: Tensor): Tensor[] {
  net.eval();
  net.training = true;
  try {
    const out = torch.noGrad(() => net.forward(x));
    return Array.isArray(out) ? out : [out];
  } finally {
    net.eval();
  }
}

/** Every architecture of the registry; in the transformer ones the channels a reshape, matmul or layer norm reads stay whole. */
const ARCHITECTURES: [string, 2 | 3, NetworkConfig['norm']][] = [
  ['unet', 3, 'instance'],
  ['unet', 2, 'batch'],
  ['resunet', 3, 'instance'],
  ['resenc-unet', 3, 'instance'],
  ['attention-unet', 3, 'instance'],
  ['unet++', 3, 'instance'],
  ['r2unet', 3, 'instance'],
  ['transunet', 3, 'instance'],
  ['swin-unetr', 3, 'instance'],
  ['hybridnet', 3, 'instance'],
  ['hybridnet', 2, 'instance'],
];
const PARTLY = ['swin-unetr', 'hybridnet'];

describe('channel pruning', () => {
  const measured: string[] = [];
  for (const [arch, dims, norm] of ARCHITECTURES) {
    test(`${arch} ${dims}D (${norm} norm): the pruned network equals the masked original within 1e-4 in libtorch (every head) and onnxruntime; fewer parameters and MACs`, async () => {
      const inChannels = arch === 'hybridnet' && dims === 2 ? 3 : 1;
      const cfg = smallConfig(arch, dims, { numClasses: 3, inChannels, norm, deepSupervision: true, extra: smallExtra(arch, dims) });
      const net = createNetwork(cfg);
      const spatial = new Array<number>(dims).fill(16);
      const x = dims === 3 ? (await hippocampusCrop([16, 16, 16])).image : torch.randn([1, inChannels, 16, 16]);
      const x2 = torch.cat([x, torch.randn(x.shape)], 0);
      if (norm === 'batch') {
        // Running statistics that are not the defaults.
        net.train();
        for (let i = 0; i < 3; i++) torch.tidy(() => torch.noGrad(() => net.forward(x2)));
      }
      net.eval();
      const masked = copyOf(net);
      try {
        const params = countParameters(net);
        const macs = countMACs(net, spatial);
        const { summary, slices } = pruneChannels(net, [1, inChannels, ...spatial], { sparsity: 0.5, structured: true });
        mask(masked, slices);
        assert.ok(summary.groups!.length > 0);
        assert.ok(
          slices.some((s) => s.role === 'in'),
          'some layer read removed channels',
        );
        torch.tidy(() => {
          const want = heads(masked, x2);
          const got = heads(net, x2);
          assert.equal(got.length, want.length);
          got.forEach((g, i) => {
            assert.deepEqual(g.shape, want[i]!.shape);
            const d = g.sub(want[i]!).abs().max().item();
            assert.ok(d <= 1e-4, `head ${i}: max |diff| ${d}`);
          });
        });
        const fp32 = exportOnnx(net, { input: x2 }).bytes;
        const want = torch.tidy(() => (torch.noGrad(() => masked.forward(x2)) as Tensor).toFloat32Array());
        const onnxDiff = maxDiff(await ortLogits(fp32, x2), want);
        assert.ok(onnxDiff <= 1e-4, `onnxruntime: max |diff| ${onnxDiff}`);
        const p = countParameters(net);
        const m = countMACs(net, spatial);
        assert.equal(p, summary.parameters.after);
        if (PARTLY.includes(arch)) {
          // Transformer blocks, channel attention (CBAM) and depthwise convs keep their channels, with why.
          assert.ok(p < 0.8 * params && m < macs, `parameters ${params} -> ${p}, MACs ${macs} -> ${m}`);
          assert.ok(
            summary.leftWhole!.some((l) => /may mix channels/.test(l.reason)),
            JSON.stringify(summary.leftWhole),
          );
        } else assert.ok(p < 0.6 * params && m < 0.6 * macs, `parameters ${params} -> ${p}, MACs ${macs} -> ${m}`);
        if (['unet', 'resunet', 'attention-unet'].includes(arch)) {
          // Half of every group's channels: exactly the network with half the widths.
          const narrow = createNetwork({ ...cfg, features: cfg.features.map((f) => f / 2) });
          assert.equal(p, countParameters(narrow));
          assert.equal(m, countMACs(narrow, spatial));
          narrow.dispose();
        }
        measured.push(
          `${arch} ${dims}D: parameters ${params} -> ${p}, MACs ${macs} -> ${m}, ${summary.groups!.length} groups pruned, ${summary.leftWhole!.length} left whole, onnx diff ${onnxDiff.toExponential(1)}`,
        );
      } finally {
        torch.dispose([x, x2]);
        net.dispose();
        masked.dispose();
      }
    });
  }

  test('group norm keeps its channels (its group count is fixed): only the upsampling convs lose channels; nothing to remove is a PruneError', () => {
    const net = createNetwork(smallConfig('unet', 2, { norm: 'group' }));
    try {
      const { summary } = pruneChannels(net, [1, 1, 16, 16], { sparsity: 0.5, structured: true });
      assert.ok(summary.groups!.length > 0 && summary.groups!.every((g) => g.producers.every((p) => p.startsWith('ups.'))), JSON.stringify(summary.groups));
      assert.ok(summary.leftWhole!.some((l) => /normalises a fixed number of channel groups/.test(l.reason)));
      assert.throws(
        () => pruneChannels(net, [1, 1, 16, 16], { sparsity: 0.1, structured: true }),
        (e: unknown) => e instanceof PruneError && /no channels to prune at sparsity 0.1/.test(e.message),
      );
    } finally {
      net.dispose();
    }
  });

  test('pruned, then quantized to int8: runs in onnxruntime with int8 kernels, close to the pruned fp32 model', async (t) => {
    const net = createNetwork(smallConfig('unet', 3, { numClasses: 3, deepSupervision: false })).eval();
    const { image } = await hippocampusCrop([16, 16, 16]);
    const calib = (await hippocampusCrop([16, 16, 16], 'hippocampus_003')).image;
    try {
      pruneChannels(net, [1, 1, 16, 16, 16], { sparsity: 0.5, structured: true });
      const fp32 = exportOnnx(net, { input: image }).bytes;
      const { bytes } = await quantizeInt8(fp32, { calibration: [{ data: calib.toFloat32Array(), dims: calib.shape }] });
      const ops = await optimizedOpCounts(bytes);
      assert.ok((ops.QLinearConv ?? 0) > 0, JSON.stringify(ops));
      const a = await ortLogits(fp32, image);
      const b = await ortLogits(bytes, image);
      let range = 0;
      for (const v of a) range = Math.max(range, Math.abs(v));
      const d = maxDiff(a, b);
      assert.ok(b.every(Number.isFinite));
      assert.ok(d < 0.25 * range, `int8 vs fp32: max |diff| ${d}, |logit| <= ${range}`);
      t.diagnostic(`pruned int8: ${JSON.stringify(ops)}, max |diff| ${d.toFixed(3)} of ${range.toFixed(2)}`);
    } finally {
      torch.dispose([image, calib]);
      net.dispose();
    }
  });

  test('measured', (t) => {
    for (const line of measured) t.diagnostic(line);
    assert.equal(measured.length, ARCHITECTURES.length);
  });
});
