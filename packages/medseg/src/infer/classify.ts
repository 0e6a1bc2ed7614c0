/**
 * Classifier inference: the logits [N, K] of every case of a set, in eval
 * mode without gradients, in batches; optionally with horizontal-flip
 * test-time augmentation (the mean of the logits of the image and its mirror).
 */
import * as torch from '@medseg/torch';
import type { ClassificationNetwork, ClassifierConfig } from '../models/classifier-config.ts';
import { voxelTypeOf, type Volume } from '../io/volume.ts';
import { batchArrays, caseCount, type ClassificationSet } from '../data/classification-set.ts';

/** Logits of every case, case-major ([N, K] rows). Restores the network's training flag. */
export function predictClassLogits(net: ClassificationNetwork, set: ClassificationSet, o: { batchSize?: number; flipTta?: boolean } = {}): Float32Array {
  const n = caseCount(set);
  const K = net.config.numClasses;
  const B = o.batchSize ?? 256;
  const out = new Float32Array(n * K);
  const wasTraining = net.training;
  net.eval();
  try {
    for (let s = 0; s < n; s += B) {
      const idx = Array.from({ length: Math.min(B, n - s) }, (_, j) => s + j);
      const { image, shape } = batchArrays(set, idx, null);
      const logits = torch.tidy(() =>
        torch.noGrad(() => {
          const x = torch.tensor(image, shape);
          let z = net.forward(x);
          if (o.flipTta) z = z.add(net.forward(x.flip([shape.length - 1]))).div(2);
          return z.contiguous().toFloat32Array();
        }),
      );
      out.set(logits, s * K);
    }
  } finally {
    net.train(wasTraining);
  }
  return out;
}

/**
 * Images (2D or 3D volumes) as a classification set at the classifier's input
 * size: channels averaged to grey for a one-channel classifier (an alpha
 * channel dropped), intensities scaled to [0, 1] (uint8 by 255, other types
 * by their own minimum and maximum), and resized: area averaging when
 * shrinking, linear interpolation when growing.
 */
export function classificationSetFromVolumes(volumes: Volume[], c: Pick<ClassifierConfig, 'inputSize' | 'inChannels' | 'dims'>): ClassificationSet {
  const per = c.inChannels * c.inputSize.reduce((a, b) => a * b, 1);
  const images = new Float32Array(volumes.length * per);
  volumes.forEach((v, i) => {
    const [nx, ny, nz] = v.size;
    const spatial = c.dims === 2 ? [ny, nx] : [nz, ny, nx];
    if (c.dims === 2 && nz !== 1) throw new Error(`a 2D classifier needs 2D images; image ${i} has ${nz} slices`);
    let lo = 0;
    let scale = 1 / 255;
    if (voxelTypeOf(v.data) !== 'uint8') {
      let min = Infinity;
      let max = -Infinity;
      for (const x of v.data) {
        if (x < min) min = x;
        if (x > max) max = x;
      }
      lo = min;
      scale = max > min ? 1 / (max - min) : 1;
    }
    const resized = torch.tidy(() => {
      let x = torch.tensor(
        Float32Array.from(v.data, (d) => (d - lo) * scale),
        [v.channels, ...spatial],
      );
      const colour = v.channels === 4 || v.channels === 2 ? x.narrow(0, 0, v.channels - 1) : x;
      x = c.inChannels === 1 ? colour.mean(0, true) : colour;
      if (x.size(0) !== c.inChannels) throw new Error(`image ${i} has ${v.channels} channels, the classifier takes ${c.inChannels}`);
      const b = x.unsqueeze(0);
      const same = spatial.join(',') === c.inputSize.join(',');
      const shrink = spatial.every((s, a) => s >= c.inputSize[a]!);
      const out = same ? b : shrink ? torch.F.adaptiveAvgPool(b, c.inputSize) : torch.F.interpolate(b, { size: c.inputSize, mode: 'linear' });
      return out.contiguous().toFloat32Array();
    });
    images.set(resized, i * per);
  });
  return { images, labels: new Int32Array(volumes.length), shape: c.inputSize, channels: c.inChannels };
}
