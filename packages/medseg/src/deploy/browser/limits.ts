/**
 * What an exported model needs in a browser, estimated from its metadata
 * before a run, and whether this browser's limits allow it: the largest
 * single tensor must fit one WebGPU storage buffer binding
 * (maxStorageBufferBindingSize) and buffer (maxBufferSize); everything alive
 * at once must fit a wasm32 heap (4 GiB, less what the runtime and the case
 * take). The estimate follows the encoder-decoder layout of the registry's
 * networks (features and strides of the plan): each stage's activation is
 * features x the patch's voxels at that stage's resolution; a decoder stage
 * holds the skip and the upsampled tensor together (2x), and a convolution
 * its input and output; transformer blocks add their attention matrices
 * (tokens^2 x heads). It is an upper bound of the order of magnitude, meant
 * to refuse a run that cannot fit with a clear message, not to predict the
 * runtime's exact peak. Browser code: no Node modules.
 */
import type { OnnxModelInfo } from '../model-info.ts';

export interface WebMemoryNeeds {
  /** Bytes of the largest single tensor of one pass (batch 1). */
  largestTensorBytes: number;
  /** Bytes alive at once during one pass, activations and weights. */
  peakBytes: number;
}

/** The wasm32 heap a runtime can grow to. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

const product = (a: number[]) => a.reduce((x, y) => x * y, 1);

export function webMemoryNeeds(info: Pick<OnnxModelInfo, 'network' | 'patchSize'>, weightBytes: number): WebMemoryNeeds {
  const { features, strides } = info.network;
  const scale = info.patchSize.map(() => 1);
  const stages = features.map((f, s) => {
    (strides[s] ?? []).forEach((st, a) => (scale[a]! *= st));
    const voxels = product(info.patchSize.map((p, a) => Math.max(1, Math.ceil(p / scale[a]!))));
    return { features: f, voxels };
  });
  // Decoder stage: skip + upsampled concatenated, then a convolution's input and output.
  const stageBytes = stages.map((s) => 4 * s.features * s.voxels * 2);
  let largest = Math.max(...stageBytes, 4 * info.network.numClasses * product(info.patchSize));
  const extra = info.network.extra ?? {};
  const heads = Number(extra.heads ?? extra.numHeads ?? 0);
  if (heads > 0) {
    // Attention over the tokens of the deepest stage (the transformer's resolution in the registry's hybrids).
    const tokens = stages[stages.length - 1]!.voxels;
    largest = Math.max(largest, 4 * heads * tokens * tokens);
  }
  const activations = stageBytes.reduce((a, b) => a + b, 0) * 2 + largest;
  return { largestTensorBytes: largest, peakBytes: activations + weightBytes };
}

const mib = (b: number) => `${Math.round(b / 1024 ** 2)} MiB`;

/** Why this model cannot run on a WebGPU device with these limits (null: it can). */
export function webGpuLimitProblem(needs: WebMemoryNeeds, limits: { maxStorageBufferBindingSize: number; maxBufferSize: number }): string | null {
  const cap = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (needs.largestTensorBytes > cap) {
    return `its largest tensor (about ${mib(needs.largestTensorBytes)}) exceeds this GPU's buffer limit (${mib(cap)})`;
  }
  return null;
}

/** Why this model cannot run in a wasm heap next to a case of `caseBytes` (null: it can). */
export function wasmLimitProblem(needs: WebMemoryNeeds, caseBytes: number, heapBytes = WASM_HEAP_BYTES): string | null {
  const total = needs.peakBytes + caseBytes;
  if (total > heapBytes)
    return `one pass needs about ${mib(needs.peakBytes)} beside the case's ${mib(caseBytes)}, more than the ${mib(heapBytes)} a wasm heap can hold`;
  return null;
}
