/**
 * Shared checks for the model tests: output shapes from the config's arithmetic,
 * gradients reaching every parameter, safetensors round trips, and overfitting
 * a real case with a Dice computed here from the argmax (not by the code under
 * test). Also small loaders for real crops (hippocampus, ISBI EM, DRIVE).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import type { NetworkConfig } from '../plan/types.ts';
import { cumulativeStrides } from '../models/blocks-network.ts';
import { readNifti } from '../io/nifti.ts';
import { decodeImage2d } from '../io/image2d.ts';
import { dataPath } from './data.ts';

const { F } = torch;

export function smallConfig(architecture: string, dims: 2 | 3, over: Partial<NetworkConfig> = {}): NetworkConfig {
  const n = over.features?.length ?? 3;
  return {
    architecture,
    dims,
    inChannels: 1,
    numClasses: 2,
    features: [4, 8, 16].slice(0, n),
    kernelSizes: Array.from({ length: n }, () => new Array(dims).fill(3)),
    strides: Array.from({ length: n }, (_, i) => new Array(dims).fill(i === 0 ? 1 : 2)),
    deepSupervision: true,
    norm: 'instance',
    ...over,
  };
}

/**
 * The architecture-specific part of a small config that every architecture
 * builds from at test sizes (Swin windows of 2, one transformer block; in 2D
 * HybridNet fuses three modalities, as DRIVE's RGB by cross-attention).
 */
export function smallExtra(arch: string, dims: 2 | 3): Record<string, unknown> {
  if (arch === 'swin-unetr') return { window: new Array(dims).fill(2) };
  if (arch === 'transunet') return { depth: 1 };
  if (arch === 'hybridnet')
    return dims === 2 ? { depth: 1, transformerStages: 2, modalities: 3, fusion: 'cross-attention' } : { depth: 1, transformerStages: 2 };
  return {};
}

/** Expected spatial size of every deep-supervision head, highest resolution first. */
export function expectedHeadShapes(c: NetworkConfig, batch: number, spatial: number[]): number[][] {
  const cum = cumulativeStrides(c.strides);
  const heads = c.deepSupervision ? c.features.length - 1 : 1;
  // UNet++ supervises its nested top-row nodes, all at full resolution.
  const nested = c.architecture === 'unet++';
  return Array.from({ length: heads }, (_, s) => [batch, c.numClasses, ...spatial.map((v, i) => (nested ? v : v / cum[s]![i]!))]);
}

/**
 * Forward in training mode: checks the head shapes, then backpropagates a
 * random projection of every head and asserts each parameter got a finite,
 * non-zero gradient.
 */
export function checkShapesAndGradients(net: SegmentationNetwork, spatial: number[], batch = 2): void {
  const c = net.config;
  net.train();
  net.zeroGrad();
  torch.tidy(() => {
    const x = torch.randn([batch, c.inChannels, ...spatial]);
    const out = net.forward(x);
    const list = Array.isArray(out) ? out : [out];
    assert.equal(Array.isArray(out), c.deepSupervision, 'deep supervision returns a list in training mode');
    assert.deepEqual(
      list.map((o) => o.shape),
      expectedHeadShapes(c, batch, spatial),
    );
    let loss = torch.scalarTensor(0);
    for (const o of list) loss = loss.add(o.mul(torch.randn(o.shape)).sum());
    loss.backward();
  });
  const dead: string[] = [];
  for (const [name, p] of net.namedParameters()) {
    const g = p.grad;
    const ok = g !== null && torch.tidy(() => g.abs().sum().item()) > 0 && torch.tidy(() => g.isfinite().all().item()) === 1;
    g?.dispose();
    if (!ok) dead.push(name);
  }
  assert.deepEqual(dead, [], `parameters without gradient: ${dead.join(', ')}`);
  net.zeroGrad();
  // Eval mode: one full-resolution output.
  net.eval();
  torch.tidy(() => {
    const out = torch.noGrad(() => net.forward(torch.randn([1, c.inChannels, ...spatial])));
    assert.ok(!Array.isArray(out), 'eval mode returns one tensor');
    assert.deepEqual(out.shape, [1, c.numClasses, ...spatial]);
  });
}

/** Saves weights to safetensors, loads them into a freshly built (differently initialised) net; eval outputs must be equal. */
export function checkSafetensorsRoundTrip(build: () => SegmentationNetwork, spatial: number[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-models-'));
  const a = build();
  const b = build();
  try {
    // A few training-mode forwards so BatchNorm running statistics differ from the defaults.
    a.train();
    torch.tidy(() => torch.noGrad(() => a.forward(torch.randn([2, a.config.inChannels, ...spatial]))));
    const file = join(dir, 'w.safetensors');
    torch.saveSafetensors(file, a.stateDict());
    const loaded = torch.loadSafetensors(file);
    b.loadStateDict(loaded.tensors);
    torch.dispose(loaded.tensors);
    a.eval();
    b.eval();
    torch.tidy(() => {
      const x = torch.randn([1, a.config.inChannels, ...spatial]);
      const ya = torch.noGrad(() => a.forward(x)) as Tensor;
      const yb = torch.noGrad(() => b.forward(x)) as Tensor;
      assert.ok(ya.equal(yb), 'outputs equal after loading the saved weights');
      const fresh = build().eval();
      const yc = torch.noGrad(() => fresh.forward(x)) as Tensor;
      assert.ok(!ya.allclose(yc, 1e-3, 1e-4), 'a differently initialised net differs (the check can fail)');
      fresh.dispose();
    });
  } finally {
    a.dispose();
    b.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Per-class Dice of argmax(logits) against the label, for classes 1..C-1 (plain JS on the arrays). */
export function diceScores(logits: Tensor, label: Tensor, numClasses: number): number[] {
  const pred = torch.tidy(() => logits.argmax(1).flatten().toArray());
  const ref = torch.tidy(() => label.flatten().toArray());
  const out: number[] = [];
  for (let k = 1; k < numClasses; k++) {
    let inter = 0;
    let a = 0;
    let b = 0;
    for (let i = 0; i < pred.length; i++) {
      const p = pred[i] === k;
      const r = ref[i] === k;
      if (p) a++;
      if (r) b++;
      if (p && r) inter++;
    }
    out.push(a + b === 0 ? 1 : (2 * inter) / (a + b));
  }
  return out;
}

/** Soft Dice + cross-entropy written here, independent of train/losses.ts. */
export function diceCe(logits: Tensor, label: Tensor, numClasses: number): Tensor {
  const ce = F.crossEntropy(logits, label);
  const prob = F.softmax(logits, 1);
  const nd = logits.ndim;
  const onehot = torch
    .oneHot(label, numClasses)
    .float()
    .permute([0, nd - 1, ...Array.from({ length: nd - 2 }, (_, i) => i + 1)]);
  const axes = [0, ...logits.shape.slice(2).map((_, i) => i + 2)];
  const inter = prob.mul(onehot).sum(axes);
  const denom = prob.sum(axes).add(onehot.sum(axes));
  const dice = inter.mul(2).add(1e-5).div(denom.add(1e-5)).slice(0, 1).mean();
  return ce.add(dice.rsub(1));
}

/**
 * Trains on one (image, label) pair with Adam until the mean foreground Dice
 * (every class) of the full-resolution output exceeds `target` (checked every 10 steps in
 * eval mode) or `maxSteps` pass. Returns the last Dice scores and steps used.
 */
export function overfit(
  net: SegmentationNetwork,
  image: Tensor,
  label: Tensor,
  o: { maxSteps: number; lr?: number; target?: number },
): { dice: number[]; steps: number } {
  const opt = new torch.optim.Adam(net.parameters(), { lr: o.lr ?? 3e-3 });
  const k = net.config.numClasses;
  let dice: number[] = [];
  let step = 0;
  for (; step < o.maxSteps;) {
    net.train();
    torch.tidy(() => {
      opt.zeroGrad();
      const out = net.forward(image);
      const list = Array.isArray(out) ? out : [out];
      let loss = diceCe(list[0]!, label, k);
      for (let i = 1; i < list.length; i++) {
        const size = list[i]!.shape.slice(2);
        const lab = F.interpolate(label.unsqueeze(1).float(), { size, mode: 'nearest' }).squeeze(1).long();
        loss = loss.add(diceCe(list[i]!, lab, k).mul(0.5 ** i));
      }
      loss.backward();
      opt.step();
    });
    step++;
    if (step % 10 === 0 || step === o.maxSteps) {
      net.eval();
      dice = torch.tidy(() => diceScores(torch.noGrad(() => net.forward(image)) as Tensor, label, k));
      if (Math.min(...dice) > (o.target ?? 0.95)) break;
    }
  }
  opt.dispose();
  return { dice, steps: step };
}

const zscore = (t: Tensor): Tensor => t.sub(t.mean()).div(t.std().add(1e-6));

/**
 * A crop of a real MSD hippocampus case centred on its label: image [1, 1, ...size]
 * (z-scored) and label [1, ...size] with classes 0/1/2 (anterior, posterior).
 */
export async function hippocampusCrop(size: [number, number, number], caseId = 'hippocampus_001'): Promise<{ image: Tensor; label: Tensor }> {
  const img = await readNifti(dataPath('msd-hippocampus', 'images', `${caseId}.nii.gz`));
  const lab = await readNifti(dataPath('msd-hippocampus', 'labels', `${caseId}.nii.gz`));
  return torch.tidy(() => {
    const [nx, ny, nz] = img.size;
    const vol = torch.tensor(Float32Array.from(img.data as ArrayLike<number>), [nz, ny, nx]);
    const seg = torch.tensor(Float32Array.from(lab.data as ArrayLike<number>), [nz, ny, nx]);
    const fg = seg.gt(0).nonzero().float().mean(0).toArray(); // label centroid [z, y, x]
    const full = [nz, ny, nx];
    const start = size.map((s, i) => Math.max(0, Math.min(full[i]! - s, Math.round(fg[i]! - s / 2))));
    if (size.some((s, i) => s > full[i]!)) throw new Error(`crop [${size}] larger than the case [${full}]`);
    const crop = (t: Tensor) => t.narrow(0, start[0]!, size[0]).narrow(1, start[1]!, size[1]).narrow(2, start[2]!, size[2]).contiguous();
    return {
      image: zscore(crop(vol)).reshape([1, 1, ...size]),
      label: crop(seg)
        .long()
        .reshape([1, ...size]),
    };
  });
}

async function read2d(path: string): Promise<{ data: ArrayLike<number>; w: number; h: number; channels: number }> {
  const v = decodeImage2d(readFileSync(path), { path });
  return { data: v.data as ArrayLike<number>, w: v.size[0], h: v.size[1], channels: v.channels };
}

/** A crop of ISBI 2012 EM slice `index`: image [1, 1, s, s], label [1, s, s] with 1 = membrane (dark in the mask). */
export async function emCrop(s = 64, index = 0, y0 = 200, x0 = 200): Promise<{ image: Tensor; label: Tensor }> {
  const im = await read2d(dataPath('isbi2012-em', 'images', `${index}.png`));
  const ma = await read2d(dataPath('isbi2012-em', 'masks', `${index}.png`));
  return torch.tidy(() => {
    const crop = (d: ArrayLike<number>, w: number, h: number) => torch.tensor(Float32Array.from(d), [h, w]).narrow(0, y0, s).narrow(1, x0, s).contiguous();
    const image = zscore(crop(im.data, im.w, im.h)).reshape([1, 1, s, s]);
    const label = crop(ma.data, ma.w, ma.h).lt(128).long().reshape([1, s, s]);
    return { image, label };
  });
}

/** A crop of DRIVE training image `id` (21..40): RGB image [1, 3, s, s] (each channel z-scored), vessel label [1, s, s]. */
export async function driveCrop(s = 64, id = 21, y0 = 260, x0 = 260): Promise<{ image: Tensor; label: Tensor }> {
  const im = await read2d(dataPath('drive', 'training', 'images', `${id}_training.tif`));
  const ma = await read2d(dataPath('drive', 'training', '1st_manual', `${id}_manual1.gif`));
  return torch.tidy(() => {
    const rgb = torch.tensor(Float32Array.from(im.data), [im.channels, im.h, im.w]).narrow(1, y0, s).narrow(2, x0, s);
    const chans = rgb.unbind(0).map((c) => zscore(c.contiguous()));
    const image = torch.stack(chans).unsqueeze(0);
    const label = torch.tensor(Float32Array.from(ma.data), [ma.h, ma.w]).narrow(0, y0, s).narrow(1, x0, s).gt(127).long().unsqueeze(0);
    return { image, label };
  });
}
