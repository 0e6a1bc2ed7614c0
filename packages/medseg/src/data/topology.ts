/**
 * nnU-Net's network topology rules (get_pool_and_conv_props), restated:
 * repeat while some axis can be pooled --
 * - an axis may pool while its current feature map size is >= 2 * minFeature
 *   (so the bottleneck stays >= minFeature = 4 voxels);
 * - and only if its current spacing is < 2x the smallest current spacing of
 *   those axes (coarse axes wait until the fine ones have caught up);
 * - a single remaining axis pools only while its size >= 3 * minFeature;
 * - an axis gets kernel 3 from the first stage where its spacing is < 2x the
 *   smallest current spacing, kernel 1 before (a much coarser axis);
 * - the bottleneck always has kernel 3; the patch is padded up to a multiple
 *   of 2^(poolings on that axis).
 * (nnU-Net's code compares spacings_of_axes[d] there, which indexes the list
 * of poolable axes with an axis number; we use the intended current_spacing[d].)
 */
export interface Topology {
  /** Stride into each stage ([1,..] for the first). */
  strides: number[][];
  /** Kernel per stage (one more than poolings: the bottleneck). */
  kernelSizes: number[][];
  poolsPerAxis: number[];
  /** Patch padded up to a multiple of mustBeDivisibleBy. */
  patchSize: number[];
  mustBeDivisibleBy: number[];
}

export function padToMultiple(shape: number[], by: number[]): number[] {
  return shape.map((s, i) => Math.ceil(s / by[i]!) * by[i]!);
}

export function poolAndConvProps(spacing: number[], patchSize: number[], minFeature = 4, maxPools = Infinity): Topology {
  const dim = spacing.length;
  const cur = [...spacing];
  const size = [...patchSize];
  const strides: number[][] = [new Array(dim).fill(1)];
  const kernelSizes: number[][] = [];
  const pools = new Array(dim).fill(0);
  const kernel = new Array(dim).fill(1);
  for (;;) {
    let valid = [...Array(dim).keys()].filter((i) => size[i]! >= 2 * minFeature);
    if (valid.length === 0) break;
    const minValid = Math.min(...valid.map((i) => cur[i]!));
    valid = valid.filter((i) => cur[i]! / minValid < 2 && pools[i]! < maxPools);
    if (valid.length === 1 && size[valid[0]!]! < 3 * minFeature) break;
    if (valid.length === 0) break;
    const minAll = Math.min(...cur);
    for (let d = 0; d < dim; d++) if (kernel[d] !== 3 && cur[d]! / minAll < 2) kernel[d] = 3;
    const stride = new Array(dim).fill(1);
    for (const v of valid) {
      stride[v] = 2;
      pools[v]!++;
      cur[v]! *= 2;
      size[v] = Math.ceil(size[v]! / 2);
    }
    strides.push(stride);
    kernelSizes.push([...kernel]);
  }
  kernelSizes.push(new Array(dim).fill(3));
  const mustBeDivisibleBy = pools.map((p) => 2 ** p);
  return { strides, kernelSizes, poolsPerAxis: pools, patchSize: padToMultiple(patchSize, mustBeDivisibleBy), mustBeDivisibleBy };
}

/** Feature map size of each stage for a patch and strides. */
export function stageSizes(patchSize: number[], strides: number[][]): number[][] {
  const out: number[][] = [];
  let s = [...patchSize];
  for (const st of strides) {
    s = s.map((v, i) => Math.ceil(v / st[i]!));
    out.push(s);
  }
  return out;
}

/**
 * Activation elements of one sample through a plain U-Net (two conv units per
 * stage in encoder and decoder): sum over stages of features * voxels. A
 * stand-in for nnU-Net's VRAM estimate with the same role: compared against
 * the value of a reference configuration.
 */
export function activationElements(patchSize: number[], strides: number[][], features: number[], inChannels = 1): number {
  const sizes = stageSizes(patchSize, strides);
  let total = inChannels * patchSize.reduce((a, b) => a * b, 1);
  sizes.forEach((sz, s) => {
    const vox = sz.reduce((a, b) => a * b, 1);
    total += features[s]! * vox * (s === sizes.length - 1 ? 2 : 4); // encoder 2 + decoder 2 (bottleneck: encoder only)
  });
  return total;
}

/**
 * Multiply-accumulates of one forward pass of one sample through the plain
 * U-Net: encoder convs, transposed-conv upsampling, decoder convs on the
 * concatenated skip, the 1x1 head.
 */
export function unetMacs(patchSize: number[], strides: number[][], kernels: number[][], features: number[], inChannels: number, numClasses: number): number {
  const sizes = stageSizes(patchSize, strides);
  const vox = sizes.map((s) => s.reduce((a, b) => a * b, 1));
  const k = kernels.map((kk) => kk.reduce((a, b) => a * b, 1));
  let macs = 0;
  let cin = inChannels;
  for (let s = 0; s < sizes.length; s++) {
    const f = features[s]!;
    macs += vox[s]! * k[s]! * (cin * f + f * f);
    cin = f;
  }
  for (let s = sizes.length - 2; s >= 0; s--) {
    const f = features[s]!;
    const up = strides[s + 1]!.reduce((a, b) => a * b, 1);
    macs += vox[s + 1]! * features[s + 1]! * f * up; // transposed conv
    macs += vox[s]! * k[s]! * (2 * f * f + f * f);
  }
  macs += vox[0]! * features[0]! * numClasses;
  return macs;
}
