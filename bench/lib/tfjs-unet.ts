/**
 * The bench U-Net in tfjs (what a TypeScript user can train with today without
 * native code): the same layers as bench/lib/unet.ts in tfjs' channels-last
 * layout, trained with the pure-JS 'cpu' backend. tfjs has no AdamW; Adam is
 * the nearest (the update costs the same order of work).
 */
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';

type Sym = tf.SymbolicTensor;

export async function tfjsTrainStepMs(dims: 2 | 3, channels: number[], input: number[], steps: number, expectParams?: number): Promise<number[]> {
  await tf.setBackend('cpu');
  await tf.ready();
  const [n, c, ...spatial] = input as [number, number, ...number[]];
  const conv = (filters: number, kernelSize: number, useBias: boolean) =>
    dims === 2 ? tf.layers.conv2d({ filters, kernelSize, padding: 'same', useBias }) : tf.layers.conv3d({ filters, kernelSize, padding: 'same', useBias });
  const block = (h: Sym, cout: number): Sym => {
    for (let i = 0; i < 2; i++) {
      h = conv(cout, 3, false).apply(h) as Sym;
      h = batchNorm(h, cout);
      h = tf.layers.reLU().apply(h) as Sym;
    }
    return h;
  };
  // tfjs' BatchNormalization stops at rank 4 ("not implemented for array of
  // rank 5"): fold D into H around it; per-channel statistics are unchanged.
  const batchNorm = (h: Sym, ch: number): Sym => {
    const bn = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5 });
    if (dims === 2) return bn.apply(h) as Sym;
    const [d, hh, w] = h.shape.slice(1) as number[];
    const flat = tf.layers.reshape({ targetShape: [d! * hh!, w!, ch] }).apply(h) as Sym;
    return tf.layers.reshape({ targetShape: [d!, hh!, w!, ch] }).apply(bn.apply(flat) as Sym) as Sym;
  };
  const pool = () => (dims === 2 ? tf.layers.maxPooling2d({ poolSize: 2 }) : tf.layers.maxPooling3d({ poolSize: 2 }));
  const up = (filters: number) =>
    dims === 2 ? tf.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2 }) : tf.layers.conv3dTranspose({ filters, kernelSize: 2, strides: 2 });

  const inp = tf.input({ shape: [...spatial, c] });
  const skips: Sym[] = [];
  let h: Sym = inp;
  channels.forEach((ch, i) => {
    if (i > 0) h = pool().apply(h) as Sym;
    h = block(h, ch);
    skips.push(h);
  });
  skips.pop();
  for (let i = channels.length - 1; i > 0; i--) {
    const u = up(channels[i - 1]!).apply(h) as Sym;
    h = block(tf.layers.concatenate({ axis: -1 }).apply([u, skips.pop()!]) as Sym, channels[i - 1]!);
  }
  const out = conv(2, 1, true).apply(h) as Sym;
  const model = tf.model({ inputs: inp, outputs: out });
  const trainable = model.trainableWeights.reduce((a, w) => a + (w.shape as number[]).reduce((p, s) => p * s, 1), 0);
  if (expectParams !== undefined && trainable !== expectParams) {
    throw new Error(`tfjs U-Net has ${trainable} trainable parameters, the medseg one ${expectParams}`);
  }

  const x = tf.randomNormal([n, ...spatial, c]);
  const labels = tf.tidy(() => tf.oneHot(tf.randomUniform([n, ...spatial], 0, 2, 'int32') as unknown as tf.Tensor1D, 2));
  const opt = tf.train.adam(1e-3);
  const ms: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    tf.tidy(() => {
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor), true);
      cost!.dataSync();
    });
    ms.push(performance.now() - t0);
    console.log(`tfjs step ${s + 1}/${steps}: ${(ms.at(-1)! / 1000).toFixed(1)} s`);
  }
  x.dispose();
  labels.dispose();
  opt.dispose();
  model.dispose();
  return ms;
}
