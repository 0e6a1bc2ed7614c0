/**
 * Blocks and the U-Net checked against independent PyTorch references
 * (models_ref.py, run with Debian's python3-torch), and the MAC counter
 * against hand-derived formulas.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { AttentionGate, CBAM } from './blocks-attention-gates.ts';
import { countMacsOf } from './blocks-macs.ts';
import { SwinBlock, windowPartition, windowReverse } from './blocks-swin.ts';
import { TransformerBlock } from './blocks-transformer.ts';
import { UNet } from './unet.ts';
import { ResEncUNet } from './resenc-unet.ts';
import { countMACs, countParameters, createNetwork } from './registry.ts';
import { smallConfig } from '../testing/models.ts';
import { runPython } from '../testing/python.ts';

torch.manualSeed(3);
const dir = mkdtempSync(join(tmpdir(), 'medseg-blocks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const script = fileURLToPath(new URL('./models_ref.py', import.meta.url));

/** Runs the PyTorch reference on the module's weights plus extra inputs; returns its outputs. */
function reference(kase: string, weights: Map<string, Tensor>, meta: Record<string, string>): Map<string, Tensor> {
  const src = join(dir, `${kase}-in.safetensors`);
  const dst = join(dir, `${kase}-out.safetensors`);
  torch.saveSafetensors(src, weights, meta);
  runPython([script, kase, src, dst]);
  const out = torch.loadSafetensors(dst).tensors;
  return out instanceof Map ? out : new Map(Object.entries(out));
}

function close(a: Tensor, b: Tensor, what: string, tol = 1e-4): void {
  assert.deepEqual(a.shape, b.shape, `${what} shape`);
  const err = torch.tidy(() => a.sub(b).abs().max().item());
  const scale = torch.tidy(() => b.abs().max().item());
  assert.ok(err <= tol * Math.max(1, scale), `${what}: max |diff| ${err} (scale ${scale})`);
}

test('U-Net 3D with per-axis strides equals a PyTorch PlainConvUNet on the same weights (all deep-supervision heads)', () => {
  const strides = [
    [1, 1, 1],
    [1, 2, 2],
    [2, 2, 2],
  ];
  const net = new UNet(
    smallConfig('unet', 3, {
      strides,
      kernelSizes: [
        [1, 3, 3],
        [3, 3, 3],
        [3, 3, 3],
      ],
    }),
  );
  torch.tidy(() => {
    const x = torch.randn([2, 1, 8, 16, 12]);
    const ours = torch.noGrad(() => net.train().forward(x)) as Tensor[];
    const ref = reference('unet', new Map([...net.stateDict(), ['input', x]]), { strides: JSON.stringify(strides) });
    ours.forEach((o, i) => close(o, ref.get(`out${i}`)!, `head ${i}`));
  });
  net.dispose();
});

test('ResEnc U-Net 3D (stem, 1/3/2 residual blocks, strided shortcuts, one-conv decoder) equals a PyTorch reference on the same weights (all heads)', () => {
  const strides = [
    [1, 1, 1],
    [1, 2, 2],
    [2, 2, 2],
  ];
  const blocks = [1, 3, 2];
  const net = new ResEncUNet(smallConfig('resenc-unet', 3, { strides, extra: { blocksPerStage: blocks } }));
  // Random affine norms, so a mixed-up norm (stem, conv2, shortcut) shows.
  torch.noGrad(() => {
    for (const [name, p] of net.namedParameters()) if (name.includes('norm') || name.includes('skip.1')) p.normal_(1, 0.5);
  });
  torch.tidy(() => {
    const x = torch.randn([2, 1, 8, 16, 12]);
    const ours = torch.noGrad(() => net.train().forward(x)) as Tensor[];
    assert.equal(ours.length, 2);
    const ref = reference('resenc_unet', new Map([...net.stateDict(), ['input', x]]), { strides: JSON.stringify(strides), blocks: JSON.stringify(blocks) });
    ours.forEach((o, i) => close(o, ref.get(`out${i}`)!, `head ${i}`));
  });
  net.dispose();
});

test('Swin block (shifted windows, relative position bias, padding) equals brute-force masked attention in PyTorch', () => {
  for (const [shift, size] of [
    [false, [8, 8]],
    [true, [8, 8]],
    [true, [6, 10]],
    [true, [3, 12]],
  ] as const) {
    const block = new SwinBlock(8, 2, [4, 4], shift);
    torch.tidy(() => {
      // A non-zero bias table so the relative-position indexing matters.
      torch.noGrad(() => block.attn.biasTable.normal_(0, 1));
      const x = torch.randn([2, ...size, 8]);
      const ours = torch.noGrad(() => block.forward(x));
      const ref = reference('swin_block', new Map([...block.stateDict(), ['input', x]]), { window: '[4,4]', shift: shift ? '1' : '0', heads: '2' });
      close(ours, ref.get('out')!, `swin shift=${shift} size=${size}`);
    });
    block.dispose();
  }
});

test('window partition and reverse are inverse (3D)', () => {
  torch.tidy(() => {
    const x = torch.randn([2, 4, 6, 8, 3]);
    const w = windowPartition(x, [2, 3, 4]);
    assert.deepEqual(w.shape, [2 * 2 * 2 * 2, 24, 3]);
    assert.ok(windowReverse(w, [2, 3, 4], 2, [4, 6, 8]).equal(x));
    // The first window holds exactly the first 2x3x4 block.
    assert.ok(w.select(0, 0).equal(x.select(0, 0).slice(0, 0, 2).slice(1, 0, 3).slice(2, 0, 4).reshape([24, 3])));
  });
});

test('pre-norm transformer block equals LayerNorm + torch.nn.MultiheadAttention + GELU MLP (output and attention map)', () => {
  const block = new TransformerBlock(16, 4);
  torch.tidy(() => {
    const x = torch.randn([2, 10, 16]);
    const ours = torch.noGrad(() => block.eval().forward(x));
    const ref = reference('transformer_block', new Map([...block.stateDict(), ['input', x]]), { heads: '4' });
    close(ours, ref.get('out')!, 'transformer out');
    close(block.lastAttention!, ref.get('attn')!, 'attention weights');
  });
  block.dispose();
});

test('CBAM (3D) and the additive attention gate (2D, gating at half resolution) equal their PyTorch definitions', () => {
  const cbam = new CBAM(3, 8, 2, 3);
  const gate = new AttentionGate(2, 6, 10, 3, 'instance');
  torch.tidy(() => {
    const x = torch.randn([2, 8, 4, 6, 5]);
    const ref = reference('cbam', new Map([...cbam.stateDict(), ['input', x]]), {});
    close(
      torch.noGrad(() => cbam.forward(x)),
      ref.get('out')!,
      'cbam',
    );
    const s = torch.randn([2, 6, 12, 16]);
    const g = torch.randn([2, 10, 6, 8]);
    const r2 = reference('gate', new Map([...gate.stateDict(), ['input', s], ['gating', g]]), {});
    close(
      torch.noGrad(() => gate.forward(s, g)),
      r2.get('out')!,
      'gate output',
    );
    close(gate.lastAlpha!, r2.get('alpha')!, 'gate alpha');
  });
  cbam.dispose();
  gate.dispose();
});

test('MAC counter: conv, transposed conv, linear and attention match hand-derived counts', () => {
  const { nn } = torch;
  const c = new nn.Conv3d(2, 4, [1, 3, 3], { padding: [0, 1, 1] });
  const ct = new nn.ConvTranspose3d(4, 2, [1, 2, 2], { stride: [1, 2, 2] });
  const lin = new nn.Linear(5, 7);
  const mha = torch.noGrad(() => new nn.MultiheadAttention(8, 2));
  torch.tidy(() => {
    assert.equal(
      countMacsOf(c, () => void c.forward(torch.zeros([1, 2, 3, 4, 4]))),
      4 * 3 * 4 * 4 * (2 * 9),
    );
    assert.equal(
      countMacsOf(ct, () => void ct.forward(torch.zeros([1, 4, 3, 4, 4]))),
      4 * 3 * 4 * 4 * (2 * 4),
    );
    assert.equal(
      countMacsOf(lin, () => void lin.forward(torch.zeros([3, 5]))),
      3 * 5 * 7,
    );
    // q/k/v projections 3 L E^2 + Q K^T (L S E) + A V (L S E) + out projection L E^2, L = S = 6, E = 8.
    assert.equal(
      countMacsOf(mha, () => void mha.forward(torch.zeros([1, 6, 8]))),
      3 * 6 * 64 + 2 * 36 * 8 + 6 * 64,
    );
  });
  // Whole U-Net 2D (32x32, features 4/8/16): the sum of its layers worked out by hand.
  const net = createNetwork(smallConfig('unet', 2, { deepSupervision: false }));
  const px = (s: number) => (32 / s) ** 2;
  const enc = px(1) * (1 * 9 * 4 + 4 * 9 * 4) + px(2) * (4 * 9 * 8 + 8 * 9 * 8) + px(4) * (8 * 9 * 16 + 16 * 9 * 16);
  const up = px(4) * 16 * 8 * 4 + px(2) * 8 * 4 * 4;
  const dec = px(2) * (16 * 9 * 8 + 8 * 9 * 8) + px(1) * (8 * 9 * 4 + 4 * 9 * 4);
  const head = px(1) * 4 * 2;
  assert.equal(countMACs(net, [32, 32]), enc + up + dec + head);
  // Parameters: conv weights (no bias before norms) + affine norms + transposed convs + head.
  const convW = 1 * 9 * 4 + 4 * 9 * 4 + 4 * 9 * 8 + 8 * 9 * 8 + 8 * 9 * 16 + 16 * 9 * 16 + 16 * 9 * 8 + 8 * 9 * 8 + 8 * 9 * 4 + 4 * 9 * 4;
  const norms = 2 * 2 * (4 + 8 + 16 + 8 + 4);
  const ups = 16 * 8 * 4 + 8 + 8 * 4 * 4 + 4;
  assert.equal(countParameters(net), convW + norms + ups + 4 * 2 + 2);
  for (const m of [c, ct, lin, mha, net]) m.dispose();
});
