/**
 * Static int8 quantization on real patches: small U-Nets fitted for a few
 * seconds to a hippocampus crop (3D) and a DRIVE crop (2D) are exported,
 * quantized with activation ranges calibrated on training crops, and run in
 * onnxruntime-node; the int8 logits are compared with the fp32 model's. The
 * graph is read back to check where the QuantizeLinear/DequantizeLinear
 * pairs sit, the per-channel weight scales are recomputed here from the
 * weights, and the calibrators' ranges from the calibration data.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { createNetwork, listArchitectures } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { driveCrop, hippocampusCrop, overfit, smallConfig, smallExtra } from '../testing/models.ts';
import { exportOnnx } from './export-onnx.ts';
import { readOnnxMetadata } from './onnx-builder.ts';
import {
  activationParams,
  optimizedOpCounts,
  QUANTIZATION_METADATA_KEY,
  quantizeInt8,
  QuantizeError,
  RangeCollector,
  roundHalfEven,
  type CalibrationInput,
  type QuantizationSummary,
} from './quantize.ts';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

torch.manualSeed(11);

const asInput = (x: Tensor): CalibrationInput => ({ data: x.toFloat32Array(), dims: x.shape });

async function logits(model: Uint8Array, x: Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    return (await session.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Max abs logit difference and the fraction of pixels/voxels whose argmax class agrees ([1, C, ...] logits). */
function compare(a: Float32Array, b: Float32Array, classes: number): { maxDiff: number; agreement: number } {
  assert.equal(a.length, b.length);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  const n = a.length / classes;
  let same = 0;
  for (let i = 0; i < n; i++) {
    let ka = 0;
    let kb = 0;
    for (let c = 1; c < classes; c++) {
      if (a[c * n + i]! > a[ka * n + i]!) ka = c;
      if (b[c * n + i]! > b[kb * n + i]!) kb = c;
    }
    if (ka === kb) same++;
  }
  return { maxDiff, agreement: same / n };
}

/** The decoded graph with lookups by tensor name. */
function readGraph(bytes: Uint8Array) {
  const g = onnx.ModelProto.decode(bytes).graph!;
  const producer = new Map<string, onnxProto.onnx.INodeProto>();
  const consumers = new Map<string, onnxProto.onnx.INodeProto[]>();
  for (const n of g.node ?? []) {
    for (const y of n.output ?? []) producer.set(y, n);
    for (const x of n.input ?? []) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  }
  const init = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const floats = (name: string): Float32Array => {
    const raw = Uint8Array.from(init.get(name)!.rawData!);
    return new Float32Array(raw.buffer);
  };
  return { g, producer, consumers, init, floats };
}

const initializerBytes = (bytes: Uint8Array): number =>
  (onnx.ModelProto.decode(bytes).graph!.initializer ?? []).reduce((a, t) => a + (t.rawData?.length ?? 0), 0);

/** Checks every Conv reads DequantizeLinear'd int8 weights (and int32 bias) and input, and feeds a QuantizeLinear unless it makes the logits. */
function assertQdqAroundConvs(bytes: Uint8Array): number {
  const { g, producer, consumers, init } = readGraph(bytes);
  const convs = (g.node ?? []).filter((n) => n.opType === 'Conv');
  assert.ok(convs.length > 0);
  let heads = 0;
  for (const c of convs) {
    const [x, w, b] = c.input!;
    assert.equal(producer.get(x!)?.opType, 'DequantizeLinear', `${c.name}: input comes from DequantizeLinear`);
    const wdq = producer.get(w!);
    assert.equal(wdq?.opType, 'DequantizeLinear', `${c.name}: weight comes from DequantizeLinear`);
    assert.equal(init.get(wdq!.input![0]!)?.dataType, DT.INT8, `${c.name}: int8 weight`);
    if (b) assert.equal(init.get(producer.get(b)!.input![0]!)?.dataType, DT.INT32, `${c.name}: int32 bias`);
    const next = consumers.get(c.output![0]!) ?? [];
    if (next.every((n) => n.opType === 'Identity')) heads++;
    else
      assert.deepEqual(
        next.map((n) => n.opType),
        ['QuantizeLinear'],
        `${c.name}: output goes to QuantizeLinear`,
      );
  }
  assert.equal(heads, 1, 'only the logits head stays fp32 at its output');
  return convs.length;
}

const fitted = async (dims: 2 | 3, upsample: 'transpose' | 'interpolate') => {
  const crop = dims === 3 ? await hippocampusCrop([16, 16, 16]) : await driveCrop(48, 21, 260, 260);
  const net = createNetwork(smallConfig('unet', dims, { numClasses: dims === 3 ? 3 : 2, inChannels: dims === 3 ? 1 : 3, upsample }));
  // Fitted until every class's Dice passes 0.8: a net stopped after a handful of steps has many
  // near-tied voxels whose argmax any rounding flips (98.8 % agreement at Dice 0.69, 99.5 % at 0.89).
  const fit = overfit(net, crop.image, crop.label, { maxSteps: 100, lr: 1e-2, target: 0.8 });
  net.eval();
  return { net, ...crop, fit };
};

const measured: string[] = [];

describe('int8 U-Nets on real patches', () => {
  const calib3d: CalibrationInput[] = [];
  const calib2d: CalibrationInput[] = [];
  before(async () => {
    // Training crops of other cases (and other places of other DRIVE images) as calibration data.
    for (const id of ['hippocampus_001', 'hippocampus_003', 'hippocampus_006']) calib3d.push(asInput((await hippocampusCrop([16, 16, 16], id)).image));
    for (const [id, y, x] of [
      [21, 260, 260],
      [22, 300, 200],
      [23, 250, 280],
    ] as const)
      calib2d.push(asInput((await driveCrop(48, id, y, x)).image));
  });

  for (const [dims, upsample] of [
    [3, 'transpose'],
    [3, 'interpolate'],
    [2, 'transpose'],
  ] as const) {
    test(`${dims}D U-Net (${upsample} decoder): int8 runs in onnxruntime with QLinearConv kernels and agrees with fp32 on >= 99 % of ${dims === 3 ? 'voxels' : 'pixels'}`, async (t) => {
      const { net, image, label, fit } = await fitted(dims, upsample);
      try {
        assert.ok(Math.min(...fit.dice) > 0.4, `fitted Dice ${fit.dice}`);
        const fp32 = exportOnnx(net, { input: image }).bytes;
        const { bytes, summary } = await quantizeInt8(fp32, { calibration: dims === 3 ? calib3d : calib2d });
        const convs = assertQdqAroundConvs(bytes);
        const opt = await optimizedOpCounts(bytes);
        // onnxruntime fuses each DQ -> Conv -> Q into an int8 QLinearConv; the fp32-output head stays a Conv.
        assert.equal(opt.QLinearConv, convs - 1, JSON.stringify(opt));
        assert.equal(opt.Conv ?? 0, 1);
        if (upsample === 'transpose') {
          assert.equal(opt.ConvTranspose, 2, 'ConvTranspose stays fp32');
          assert.ok(summary.leftFp32.every((l) => l.op === 'ConvTranspose' && /no int8 ConvTranspose kernel/.test(l.reason)));
        }
        assert.equal(opt.QLinearConcat, 2, 'the skip concatenations run on int8');
        const classes = dims === 3 ? 3 : 2;
        const a = await logits(fp32, image);
        const b = await logits(bytes, image);
        const { maxDiff, agreement } = compare(a, b, classes);
        let range = 0;
        for (const v of a) range = Math.max(range, Math.abs(v));
        assert.ok(agreement >= 0.99, `argmax agreement ${agreement}`);
        assert.ok(maxDiff < 0.1 * range, `max diff ${maxDiff} vs logit magnitude ${range}`);
        // The weights shrink about 4x (ConvTranspose weights and norm parameters stay fp32); in nets this
        // small the node and tensor names are most of the file.
        const wa = initializerBytes(fp32);
        const wb = initializerBytes(bytes);
        assert.ok(wb < (upsample === 'transpose' ? 0.45 : 0.35) * wa, `int8 initializers ${wb} B vs fp32 ${wa} B`);
        const meta = JSON.parse(readOnnxMetadata(bytes)[QUANTIZATION_METADATA_KEY]!) as QuantizationSummary;
        assert.deepEqual(meta.calibrator, { kind: 'minmax' });
        assert.equal(meta.calibrationInputs, 3);
        const line = `${dims}D ${upsample}: fitted Dice ${fit.dice.map((d) => d.toFixed(2))}, max |Δlogit| ${maxDiff.toFixed(3)} (|logit| ≤ ${range.toFixed(1)}), argmax agreement ${(100 * agreement).toFixed(2)} %, file ${fp32.length} → ${bytes.length} B, initializers ${wa} → ${wb} B, ORT ops ${JSON.stringify(opt)}`;
        measured.push(line);
        t.diagnostic(line);
        label.dispose();
        image.dispose();
      } finally {
        net.dispose();
      }
    });
  }

  test('per-channel weight scales are max|w| / 63 (7-bit weights, the default) of each output channel (Conv axis 0, ConvTranspose axis 1), weights round to them', async () => {
    const net = createNetwork(smallConfig('unet', 3, { numClasses: 3, upsample: 'transpose' })).eval();
    const x = torch.tensor(calib3d[0]!.data, calib3d[0]!.dims);
    try {
      const fp32 = exportOnnx(net, { input: x }).bytes;
      const { bytes, summary } = await quantizeInt8(fp32, { calibration: calib3d.slice(0, 1), convTranspose: true });
      assert.deepEqual(summary.leftFp32, []);
      const opt = await optimizedOpCounts(bytes);
      assert.equal(opt.ConvTranspose, 2, 'onnxruntime runs a quantized ConvTranspose as DequantizeLinear + fp32 ConvTranspose (no int8 kernel)');
      const { g, producer, init, floats } = readGraph(bytes);
      const params = new Map(net.namedParameters());
      let checked = 0;
      for (const n of g.node ?? []) {
        if (n.opType !== 'Conv' && n.opType !== 'ConvTranspose') continue;
        const dq = producer.get(n.input![1]!)!;
        const qName = dq.input![0]!;
        const pName = qName.replace(/\/int8$/, '');
        const w = params.get(pName);
        assert.ok(w, `${qName} names the parameter ${pName}`);
        const axis = n.opType === 'Conv' ? 0 : 1;
        assert.equal(Number(dq.attribute?.find((a) => a.name === 'axis')?.i), axis);
        const perChannel = torch.tidy(() => (axis === 0 ? w : w.transpose(0, 1)).flatten(1).abs().max(1).toArray());
        const want = perChannel.map((m) => m / 63);
        const got = floats(dq.input![1]!);
        assert.equal(got.length, want.length);
        want.forEach((s, c) => assert.ok(Math.abs(got[c]! - s) <= 1e-7 * s, `${pName} channel ${c}: scale ${got[c]} vs ${s}`));
        // Dequantized weights are within half a step of the originals.
        const q = new Int8Array(Uint8Array.from(init.get(qName)!.rawData!).buffer);
        const wv = w.toFloat32Array();
        const shape = w.shape;
        const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
        for (let i = 0; i < wv.length; i++) {
          const c = Math.floor(i / inner) % shape[axis]!;
          assert.ok(Math.abs(q[i]! * got[c]! - wv[i]!) <= 0.5 * got[c]! * (1 + 1e-5), `${pName}[${i}]`);
        }
        checked++;
      }
      assert.equal(checked, 13);
    } finally {
      x.dispose();
      net.dispose();
    }
  });

  test('calibrators: the input tensor range is the min-max or the mean per-batch percentile of the calibration data, and its QuantizeLinear uses the matching scale and zero point', async () => {
    const net = createNetwork(smallConfig('unet', 3, { numClasses: 3 })).eval();
    const x = torch.tensor(calib3d[0]!.data, calib3d[0]!.dims);
    try {
      const fp32 = exportOnnx(net, { input: x }).bytes;
      let lo = Infinity;
      let hi = -Infinity;
      for (const c of calib3d) for (const v of c.data) ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
      const pct = (c: CalibrationInput, p: number): number => {
        const s = [...c.data].sort((a, b) => a - b);
        const pos = p * (s.length - 1);
        const i = Math.floor(pos);
        return s[i]! + (pos - i) * ((s[i + 1] ?? s[i]!) - s[i]!);
      };
      const mean = (f: (c: CalibrationInput) => number) => calib3d.reduce((a, c) => a + f(c), 0) / calib3d.length;
      const cases = [
        { calibrator: { kind: 'minmax' } as const, want: [lo, hi] },
        { calibrator: { kind: 'percentile', percentile: 99.9 } as const, want: [mean((c) => pct(c, 0.001)), mean((c) => pct(c, 0.999))] },
      ];
      const ranges: string[] = [];
      for (const { calibrator, want } of cases) {
        for (const activationType of ['uint8', 'int8'] as const) {
          const r = await quantizeInt8(fp32, { calibration: calib3d, calibrator, activationType });
          const got = r.ranges.get('image')!;
          assert.ok(Math.abs(got[0] - want[0]!) < 1e-5 && Math.abs(got[1] - want[1]!) < 1e-5, `${calibrator.kind}: [${got}] vs [${want}]`);
          // Scale and zero point by hand: the range widened to hold 0, over 255 steps.
          const l = Math.min(want[0]!, 0);
          const h = Math.max(want[1]!, 0);
          const scale = (h - l) / 255;
          const zp = Math.round((activationType === 'uint8' ? 0 : -128) - l / scale);
          const { g, init, floats } = readGraph(r.bytes);
          const q = (g.node ?? []).find((n) => n.opType === 'QuantizeLinear' && n.input![0] === 'image')!;
          assert.ok(Math.abs(floats(q.input![1]!)[0]! - scale) <= 1e-6 * scale);
          const zpInit = init.get(q.input![2]!)!;
          assert.equal(zpInit.dataType, activationType === 'uint8' ? DT.UINT8 : DT.INT8);
          const zpValue = activationType === 'uint8' ? zpInit.rawData![0]! : new Int8Array(Uint8Array.from(zpInit.rawData!).buffer)[0]!;
          assert.equal(zpValue, zp);
          // The int8-activation model runs too.
          if (activationType === 'int8') assert.equal((await logits(r.bytes, x)).length, 3 * 16 ** 3);
        }
        ranges.push(`${calibrator.kind}: [${want.map((v) => v!.toFixed(3))}]`);
      }
      measured.push(`image range by calibrator: ${ranges.join(', ')}`);
    } finally {
      x.dispose();
      net.dispose();
    }
  });

  test('measured', (t) => {
    for (const line of measured) t.diagnostic(line);
    assert.equal(measured.length, 4);
  });
});

test('RangeCollector on known values: min-max over batches, percentile averaged per batch', () => {
  const ramp = Float32Array.from({ length: 101 }, (_, i) => i); // 0..100: the p-th percentile is p
  const shifted = Float32Array.from(ramp, (v) => v - 50);
  const mm = new RangeCollector({ kind: 'minmax' });
  mm.add(ramp);
  mm.add(shifted);
  assert.deepEqual(mm.range(), [-50, 100]);
  const pc = new RangeCollector({ kind: 'percentile', percentile: 99 });
  const near = (got: [number, number], want: [number, number]) =>
    assert.ok(Math.abs(got[0] - want[0]) < 1e-9 && Math.abs(got[1] - want[1]) < 1e-9, `[${got}] vs [${want}]`);
  pc.add(ramp);
  near(pc.range(), [1, 99]);
  pc.add(shifted);
  near(pc.range(), [(1 - 49) / 2, (99 + 49) / 2]);
  const interp = new RangeCollector({ kind: 'percentile', percentile: 99.5 });
  interp.add(ramp);
  near(interp.range(), [0.5, 99.5]);
  assert.throws(() => new RangeCollector({ kind: 'percentile', percentile: 40 }), QuantizeError);
  assert.throws(() => new RangeCollector({ kind: 'minmax' }).range(), QuantizeError);
  assert.deepEqual([2.5, 1.5, -0.5, -1.5, 0.49, -2.6].map(roundHalfEven), [2, 2, 0, -2, 0, -3]);
  assert.deepEqual(activationParams([0.5, 2.55], 'uint8'), { scale: Math.fround(2.55 / 255), zeroPoint: 0 });
  assert.deepEqual(activationParams([-1.275, 1.275], 'int8'), { scale: Math.fround(2.55 / 255), zeroPoint: 0 });
});

test('a linear layer (MatMul of a transposed weight) is quantized per output feature and fused by onnxruntime', async (t) => {
  class ConvLinear extends torch.nn.UnaryModule {
    conv = this.module('conv', new torch.nn.Conv2d(3, 8, 3, { padding: 1 }));
    lin = this.module('lin', new torch.nn.Linear(8, 2));
    forward(x: Tensor): Tensor {
      const y = this.conv.forward(x).relu();
      return this.lin.forward(y.permute([0, 2, 3, 1])).permute([0, 3, 1, 2]);
    }
  }
  const net = new ConvLinear().eval();
  const crops = [await driveCrop(32, 21, 260, 260), await driveCrop(32, 22, 300, 200)];
  try {
    const fp32 = exportOnnx(net, { input: crops[0]!.image }).bytes;
    const { bytes, summary } = await quantizeInt8(fp32, { calibration: crops.map((c) => asInput(c.image)) });
    assert.deepEqual(summary.quantized, { Conv: 1, MatMul: 1 });
    const { g, producer, floats } = readGraph(bytes);
    assert.ok(!(g.node ?? []).some((n) => n.opType === 'Transpose' && n.input![0] === 'lin.weight'), 'the weight transpose is folded');
    const mm = (g.node ?? []).find((n) => n.opType === 'MatMul')!;
    const dq = producer.get(mm.input![1]!)!;
    const want = torch.tidy(() => net.lin.weight.abs().max(1).toArray()).map((m) => m / 63);
    const got = floats(dq.input![1]!);
    want.forEach((s, k) => assert.ok(Math.abs(got[k]! - s) <= 1e-7 * s));
    const opt = await optimizedOpCounts(bytes);
    assert.ok(!opt.MatMul, `MatMul fused into an int8 kernel: ${JSON.stringify(opt)}`);
    const a = await logits(fp32, crops[1]!.image);
    const b = await logits(bytes, crops[1]!.image);
    const { maxDiff, agreement } = compare(a, b, 2);
    assert.ok(agreement >= 0.98, `agreement ${agreement}`);
    t.diagnostic(`conv+linear 2D: max |Δ| ${maxDiff.toFixed(4)}, agreement ${(100 * agreement).toFixed(2)} %, ORT ops ${JSON.stringify(opt)}`);
  } finally {
    for (const c of crops) torch.dispose([c.image, c.label]);
    net.dispose();
  }
});

test('bad input is refused with a typed error', async () => {
  const net = createNetwork(smallConfig('unet', 2)).eval();
  const x = torch.randn([1, 1, 16, 16]);
  try {
    const fp32 = exportOnnx(net, { input: x }).bytes;
    await assert.rejects(quantizeInt8(fp32, { calibration: [] }), QuantizeError);
    await assert.rejects(quantizeInt8(fp32, { calibration: [asInput(x)], calibrator: { kind: 'percentile', percentile: 10 } }), QuantizeError);
  } finally {
    x.dispose();
    (net as SegmentationNetwork).dispose();
  }
});

test('every architecture of the registry, 2D and 3D, quantizes and runs: convolutions as QLinearConv, weight MatMuls as QLinearMatMul', async (t) => {
  const crops = {
    2: [(await driveCrop(32)).image, (await driveCrop(32, 22, 300, 200)).image],
    3: [(await hippocampusCrop([16, 16, 16])).image, (await hippocampusCrop([16, 16, 16], 'hippocampus_003')).image],
  };
  const lines: string[] = [];
  try {
    for (const arch of listArchitectures().map((a) => a.name)) {
      for (const dims of [2, 3] as const) {
        const extra = smallExtra(arch, dims);
        const net = createNetwork(smallConfig(arch, dims, { inChannels: dims === 2 ? 3 : 1, numClasses: 3, extra })).eval();
        const [a, b] = crops[dims] as [Tensor, Tensor];
        try {
          const fp32 = exportOnnx(net, { input: a }).bytes;
          const { bytes, summary } = await quantizeInt8(fp32, { calibration: [asInput(a), asInput(b)] });
          const opt = await optimizedOpCounts(bytes);
          const label = `${arch} ${dims}D`;
          assert.equal(opt.QLinearConv, summary.quantized.Conv! - 1, `${label}: ${JSON.stringify(opt)}`);
          assert.equal(opt.QLinearMatMul ?? 0, summary.quantized.MatMul ?? 0, `${label}: ${JSON.stringify(opt)}`);
          // Random weights: no argmax to agree on, but a wrong axis or scale would be far off.
          const y0 = await logits(fp32, b);
          const y1 = await logits(bytes, b);
          let diff = 0;
          let range = 0;
          for (let i = 0; i < y0.length; i++) ((diff = Math.max(diff, Math.abs(y0[i]! - y1[i]!))), (range = Math.max(range, Math.abs(y0[i]!))));
          assert.ok(diff < 0.25 * range, `${label}: max diff ${diff} vs |logit| ${range}`);
          lines.push(`${label}: ${JSON.stringify(summary.quantized)} ${(diff / range).toFixed(3)}`);
        } finally {
          net.dispose();
        }
      }
    }
    t.diagnostic(`quantized ops and max |Δ| / max |logit| (random weights): ${lines.join('; ')}`);
  } finally {
    torch.dispose([...crops[2], ...crops[3]]);
  }
});
