/**
 * Dynamic int8 quantization of linear layers: one linear layer's output in
 * onnxruntime equals the integer arithmetic the ONNX operators define,
 * recomputed here from the weights and the input; a small random-weight
 * HybridNet (3D, two transformer stages) gets its weight MatMuls fused by
 * onnxruntime into DynamicQuantizeMatMul, its attention MatMuls left fp32,
 * and stays within the tolerance below of the fp32 model on a real
 * hippocampus crop; static int8 with the linear layers left to the dynamic
 * quantizer composes with it.
 *
 * Tolerance: each quantized product x_k w_kj carries an error of at most
 * half an activation step times |w| plus half a weight step times |x|, with
 * 255 activation steps over x's range and 63 weight steps over max |w|, so
 * one layer's output moves by well under 1 % of its range, and a handful of
 * such layers (each followed by a LayerNorm that rescales) by a few percent:
 * max |Δ logit| <= 5 % of max |logit|, the mean |Δ| under 1 %.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { hippocampusCrop, smallConfig, smallExtra } from '../testing/models.ts';
import { exportOnnx } from './export-onnx.ts';
import { readOnnxMetadata } from './onnx-builder.ts';
import { optimizedOpCounts, quantizeInt8, quantizeWeightsPerChannel, roundHalfEven } from './quantize.ts';
import { DYNAMIC_QUANTIZATION_METADATA_KEY, quantizeDynamicLinear, type DynamicQuantizationSummary } from './quantize-dynamic.ts';

torch.manualSeed(17);

async function run(model: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model);
  try {
    return (await s.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).logits!.data as Float32Array;
  } finally {
    await s.release();
  }
}

test('one linear layer: onnxruntime computes exactly DynamicQuantizeLinear + MatMulInteger + scales, as recomputed here', async () => {
  class LinearOnly extends torch.nn.UnaryModule {
    lin = this.module('lin', new torch.nn.Linear(16, 8));
    forward(x: Tensor): Tensor {
      return this.lin.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2]);
    }
  }
  const net = new LinearOnly().eval();
  const x = torch.randn([1, 16, 3, 5]).mul(2).add(0.7);
  try {
    const { bytes, summary } = quantizeDynamicLinear(exportOnnx(net, { input: x, dynamicSpatial: false }).bytes);
    assert.equal(summary.quantized, 1);
    const got = await run(bytes, x);
    // The reference: rows are pixels, columns input features.
    const rows = torch.tidy(() => x.permute([0, 2, 3, 1]).reshape([15, 16]).toFloat32Array());
    const w = torch.tidy(() => net.lin.weight.t().contiguous().toFloat32Array()); // [16, 8]
    const bias = net.lin.bias!.toFloat32Array();
    const { q, scales } = quantizeWeightsPerChannel(w, [16, 8], 1, 63);
    let lo = 0;
    let hi = 0;
    for (const v of rows) ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
    const xs = Math.fround((hi - lo) / 255);
    const zp = Math.max(0, Math.min(255, roundHalfEven(-lo / xs)));
    const xq = rows.map((v) => Math.max(0, Math.min(255, roundHalfEven(v / xs) + zp)));
    let worst = 0;
    for (let r = 0; r < 15; r++)
      for (let j = 0; j < 8; j++) {
        let acc = 0;
        for (let k = 0; k < 16; k++) acc += (xq[r * 16 + k]! - zp) * q[k * 8 + j]!;
        const want = acc * Math.fround(xs * scales[j]!) + bias[j]!;
        // Output layout [1, 8, 3, 5]: feature j of pixel r.
        worst = Math.max(worst, Math.abs(got[j * 15 + r]! - want));
      }
    assert.ok(worst < 1e-5, `max |onnxruntime - integer reference| ${worst}`);
  } finally {
    x.dispose();
    net.dispose();
  }
});

test('HybridNet 3D: weight MatMuls run as DynamicQuantizeMatMul, attention stays fp32, logits within 5 % of fp32; composes with static int8', async (t) => {
  const net = createNetwork(smallConfig('hybridnet', 3, { numClasses: 3, extra: smallExtra('hybridnet', 3) })).eval();
  const a = (await hippocampusCrop([16, 16, 16])).image;
  const b = (await hippocampusCrop([16, 16, 16], 'hippocampus_003')).image;
  try {
    const fp32 = exportOnnx(net, { input: a }).bytes;
    const { bytes, summary } = quantizeDynamicLinear(fp32);
    assert.ok(summary.quantized >= 4, `quantized ${summary.quantized} MatMuls`);
    assert.ok(summary.leftFp32.length >= 2, 'attention MatMuls stay fp32');
    const meta = readOnnxMetadata(bytes);
    assert.deepEqual(JSON.parse(meta[DYNAMIC_QUANTIZATION_METADATA_KEY]!) as DynamicQuantizationSummary, summary);
    const opt = await optimizedOpCounts(bytes);
    // One fused int8 kernel per weight MatMul: DynamicQuantizeMatMul, or MatMulIntegerToFloat where several share one quantized input (q, k, v).
    assert.equal((opt.DynamicQuantizeMatMul ?? 0) + (opt.MatMulIntegerToFloat ?? 0), summary.quantized, JSON.stringify(opt));
    assert.ok(!opt.MatMulInteger, JSON.stringify(opt));
    const y0 = await run(fp32, b);
    const y1 = await run(bytes, b);
    let max = 0;
    let sum = 0;
    let range = 0;
    for (let i = 0; i < y0.length; i++) {
      const d = Math.abs(y0[i]! - y1[i]!);
      max = Math.max(max, d);
      sum += d;
      range = Math.max(range, Math.abs(y0[i]!));
    }
    assert.ok(max <= 0.05 * range, `max |Δ| ${max} vs max |logit| ${range}`);
    assert.ok(sum / y0.length <= 0.01 * range, `mean |Δ| ${sum / y0.length} vs max |logit| ${range}`);

    // Static int8 for the convolutions, the linear layers left to the dynamic quantizer.
    const s = await quantizeInt8(fp32, { calibration: [a, b].map((x) => ({ data: x.toFloat32Array(), dims: x.shape })), linear: false });
    assert.ok(!s.summary.quantized.MatMul);
    const both = quantizeDynamicLinear(s.bytes);
    assert.equal(both.summary.quantized, summary.quantized);
    const opt2 = await optimizedOpCounts(both.bytes);
    assert.equal((opt2.DynamicQuantizeMatMul ?? 0) + (opt2.MatMulIntegerToFloat ?? 0), summary.quantized, JSON.stringify(opt2));
    assert.ok(opt2.QLinearConv, JSON.stringify(opt2));
    assert.equal((await run(both.bytes, b)).length, y0.length);
    t.diagnostic(
      `${summary.quantized} MatMuls dynamic, ${summary.leftFp32.length} fp32; max |Δ| / max |logit| ${(max / range).toFixed(4)}, mean ${(sum / y0.length / range).toFixed(5)}`,
    );
  } finally {
    torch.dispose([a, b]);
    net.dispose();
  }
});
