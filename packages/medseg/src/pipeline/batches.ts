/**
 * Training batches: patches with foreground oversampling (the last third of
 * every batch is centred on a voxel of a random foreground class present in
 * the case, as nnU-Net's oversample_foreground_percent), padded where a case
 * is smaller than the patch, then augmented on the batch with torch ops
 * (rotation and scaling through one affine sampling grid, mirroring, noise,
 * blur, brightness, contrast, simulated low resolution, gamma) with the plan's
 * probabilities. Every batch is a pure function of (seed, epoch, iteration),
 * which is what makes a resumed training run identical to an uninterrupted one.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { PreprocessedCase } from '../data/types.ts';
import type { Batch } from '../train/trainer.ts';
import type { Augmentation } from './planner.ts';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashSeed(...parts: number[]): number {
  let h = 2166136261;
  for (const p of parts) {
    h ^= p + 0x9e3779b9 + (h << 6) + (h >>> 2);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

interface IndexedCase {
  c: PreprocessedCase;
  /** Up to 10k voxel indices per foreground class. */
  fg: Map<number, Int32Array>;
}

function indexCase(c: PreprocessedCase): IndexedCase {
  const fg = new Map<number, number[]>();
  const lab = c.label!;
  for (let i = 0; i < lab.length; i++) {
    const l = lab[i]!;
    if (l > 0) {
      let a = fg.get(l);
      if (!a) fg.set(l, (a = []));
      a.push(i);
    }
  }
  const out = new Map<number, Int32Array>();
  for (const [l, idx] of fg) {
    const step = Math.max(1, Math.floor(idx.length / 10000));
    out.set(l, Int32Array.from(idx.filter((_, k) => k % step === 0)));
  }
  return { c, fg: out };
}

export interface SamplerOptions {
  patchSize: number[];
  batchSize: number;
  foregroundOversampling: number;
  augmentation: Augmentation | null;
  seed: number;
}

export class PatchSampler {
  private readonly cases: IndexedCase[];
  constructor(
    cases: PreprocessedCase[],
    readonly o: SamplerOptions,
  ) {
    if (cases.length === 0) throw new Error('no training cases');
    this.cases = cases.map(indexCase);
  }

  /** Patch origin (z, y, x) in case voxels: random, or centred on a foreground voxel. */
  private origin(ic: IndexedCase, patch: [number, number, number], forceFg: boolean, rnd: () => number): [number, number, number] {
    const shape = ic.c.shape;
    const lo = shape.map((s, i) => Math.min(0, s - patch[i]!)); // negative: pad before
    const hi = shape.map((s, i) => Math.max(0, s - patch[i]!));
    const classes = [...ic.fg.keys()];
    if (forceFg && classes.length) {
      const idx = ic.fg.get(classes[Math.floor(rnd() * classes.length)]!)!;
      const v = idx[Math.floor(rnd() * idx.length)]!;
      const [, Y, X] = shape;
      const pos = [Math.floor(v / (Y * X)), Math.floor(v / X) % Y, v % X];
      return pos.map((p, i) => Math.max(lo[i]!, Math.min(hi[i]!, p - Math.floor(patch[i]! / 2)))) as [number, number, number];
    }
    return shape.map((_, i) => lo[i]! + Math.floor(rnd() * (hi[i]! - lo[i]! + 1))) as [number, number, number];
  }

  /** Copies a (zero-padded) patch of image and label out of a case. */
  private crop(ic: IndexedCase, origin: [number, number, number], patch: [number, number, number]): { img: Float32Array; lab: Uint8Array } {
    const { c } = ic;
    const [Z, Y, X] = c.shape;
    const [pz, py, px] = patch;
    const img = new Float32Array(c.channels * pz * py * px);
    const lab = new Uint8Array(pz * py * px);
    const n = Z * Y * X;
    for (let z = 0; z < pz; z++) {
      const sz = origin[0] + z;
      if (sz < 0 || sz >= Z) continue;
      for (let y = 0; y < py; y++) {
        const sy = origin[1] + y;
        if (sy < 0 || sy >= Y) continue;
        const x0 = Math.max(0, -origin[2]);
        const x1 = Math.min(px, X - origin[2]);
        if (x1 <= x0) continue;
        const src = (sz * Y + sy) * X + origin[2];
        const dst = (z * py + y) * px;
        lab.set(c.label!.subarray(src + x0, src + x1), dst + x0);
        for (let ch = 0; ch < c.channels; ch++) img.set(c.data.subarray(ch * n + src + x0, ch * n + src + x1), ch * pz * py * px + dst + x0);
      }
    }
    return { img, lab };
  }

  batch(epoch: number, iteration: number): Batch {
    const { patchSize, batchSize } = this.o;
    const patch3 = (patchSize.length === 2 ? [1, ...patchSize] : patchSize) as [number, number, number];
    const rnd = mulberry32(hashSeed(this.o.seed, epoch, iteration));
    const nFg = Math.round(batchSize * this.o.foregroundOversampling);
    const imgs: Float32Array[] = [];
    const labs: Uint8Array[] = [];
    for (let b = 0; b < batchSize; b++) {
      const ic = this.cases[Math.floor(rnd() * this.cases.length)]!;
      const { img, lab } = this.crop(ic, this.origin(ic, patch3, b >= batchSize - nFg, rnd), patch3);
      imgs.push(img);
      labs.push(lab);
    }
    const C = this.cases[0]!.c.channels;
    const per = imgs[0]!.length;
    const allImg = new Float32Array(per * batchSize);
    const allLab = new Uint8Array(labs[0]!.length * batchSize);
    imgs.forEach((a, b) => allImg.set(a, b * per));
    labs.forEach((a, b) => allLab.set(a, b * a.length));
    return torch.tidy(() => {
      let image = torch.tensor(allImg, [batchSize, C, ...patchSize]);
      let label = torch.tensor(allLab, [batchSize, ...patchSize]);
      if (this.o.augmentation) [image, label] = augmentBatch(image, label, this.o.augmentation, rnd, new torch.Generator(hashSeed(this.o.seed, epoch, iteration, 7)));
      return { image, label: label.long() };
    });
  }
}

function rotationMatrix3(ax: number, ay: number, az: number): number[][] {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(ax), Math.sin(ax), Math.cos(ay), Math.sin(ay), Math.cos(az), Math.sin(az)];
  const Rx = [[1, 0, 0], [0, cx, -sx], [0, sx, cx]];
  const Ry = [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]];
  const Rz = [[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]];
  const mul = (A: number[][], B: number[][]) => A.map((r) => B[0]!.map((_, j) => r.reduce((s, v, k) => s + v * B[k]![j]!, 0)));
  return mul(mul(Rz, Ry), Rx);
}

/** Separable Gaussian blur of [N, C, ...] with per-call sigma (voxels). */
function gaussianBlur(x: Tensor, sigma: number): Tensor {
  const r = Math.max(1, Math.ceil(2.5 * sigma));
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const s = k.reduce((a, b) => a + b, 0);
  const spatial = x.ndim - 2;
  const C = x.size(1);
  let out = x;
  for (let axis = 0; axis < spatial; axis++) {
    const shape = [C, 1, ...Array.from({ length: spatial }, (_, i) => (i === axis ? 2 * r + 1 : 1))];
    const w = torch.tensor(k.map((v) => v / s), [2 * r + 1]).reshape(shape).expand(shape).contiguous();
    const padding = Array.from({ length: spatial }, (_, i) => (i === axis ? r : 0));
    out = torch.F.conv(out, w, null, { padding, groups: C });
  }
  return out;
}

/**
 * Augments a batch in place of nnU-Net's batchgenerators pipeline (same kinds,
 * same default probabilities; spatial transforms act on the patch itself).
 */
export function augmentBatch(image: Tensor, label: Tensor, p: Augmentation, rnd: () => number, gen: torch.Generator): [Tensor, Tensor] {
  const B = image.size(0);
  const spatial = image.ndim - 2;
  const outImgs: Tensor[] = [];
  const outLabs: Tensor[] = [];
  for (let b = 0; b < B; b++) {
    let x = image.narrow(0, b, 1);
    let y = label.narrow(0, b, 1).unsqueeze(1).float();
    const rotate = rnd() < p.rotation;
    const scale = rnd() < p.scaling;
    if (rotate || scale) {
      const ang = () => (rotate ? (rnd() * 2 - 1) * (Math.PI / 6) : 0);
      const f = scale ? 0.7 + rnd() * 0.7 : 1;
      const R = spatial === 3 ? rotationMatrix3(ang(), ang(), ang()) : (() => {
        const a = ang();
        return [[Math.cos(a), -Math.sin(a)], [Math.sin(a), Math.cos(a)]];
      })();
      // theta maps output to input coordinates: scaling by 1/f zooms in by f.
      const theta = R.flatMap((row) => [...row.map((v) => v / f), 0]);
      const th = torch.tensor(theta, [1, spatial, spatial + 1]);
      const grid = torch.F.affineGrid(th, x.shape, false);
      x = torch.F.gridSample(x, grid, { mode: 'bilinear', paddingMode: 'zeros' });
      y = torch.F.gridSample(y, grid, { mode: 'nearest', paddingMode: 'zeros' });
    }
    const flips: number[] = [];
    for (let a = 0; a < spatial; a++) if (rnd() < p.mirror) flips.push(a + 2);
    if (flips.length) {
      x = x.flip(flips);
      y = y.flip(flips);
    }
    if (rnd() < p.noise) x = x.add(torch.randn(x.shape, { generator: gen }).mul(rnd() * 0.1));
    if (rnd() < p.blur) x = gaussianBlur(x, 0.5 + rnd() * 0.5);
    if (rnd() < p.brightness) x = x.mul(0.75 + rnd() * 0.5);
    if (rnd() < p.contrast) {
      const f = 0.75 + rnd() * 0.5;
      const mn = x.min().item();
      const mx = x.max().item();
      const mean = x.mean();
      x = x.sub(mean).mul(f).add(mean).clamp(mn, mx);
    }
    if (rnd() < p.lowResolution) {
      const f = 1 + rnd();
      const size = x.shape.slice(2);
      const small = size.map((s) => Math.max(1, Math.round(s / f)));
      x = torch.F.interpolate(torch.F.interpolate(x, { size: small, mode: 'nearest' }), { size, mode: 'linear' });
    }
    if (rnd() < p.gamma) {
      const invert = rnd() < 0.15;
      const g = rnd() < 0.5 ? 0.7 + rnd() * 0.3 : 1 + rnd() * 0.5;
      const v = invert ? x.neg() : x;
      const mn = v.min().item();
      const rng = Math.max(1e-7, v.max().item() - mn);
      const mean = v.mean().item();
      const std = v.std().item();
      let out = v.sub(mn).div(rng).pow(g).mul(rng).add(mn);
      // Keep the patch's mean and std, as nnU-Net's gamma transform does.
      out = out.sub(out.mean()).div(Math.max(out.std().item(), 1e-7)).mul(std).add(mean);
      x = invert ? out.neg() : out;
    }
    outImgs.push(x);
    outLabs.push(y.squeeze(1).round().to('uint8'));
  }
  return [torch.cat(outImgs, 0), torch.cat(outLabs, 0)];
}
