/**
 * Pruning a network's weights, on the libtorch module itself:
 *
 * - magnitude (unstructured): the smallest-magnitude weights of every
 *   convolution, transposed convolution and linear layer become zero, under
 *   one threshold over all of them (global) or each layer to the sparsity on
 *   its own. Biases, norms and the layers that make the outputs (the logits
 *   heads) stay whole. The network keeps its shapes.
 * - channels (structured): the output channels of each prunable group
 *   (prune-graph.ts: one convolution's channels, or several joined by a
 *   residual add) with the smallest filters, by the mean absolute weight of
 *   each channel's filter summed over the group's convolutions (Li et al.
 *   2017's L1 criterion, made comparable between a 3x3x3 conv and a 1x1x1
 *   shortcut), are removed from every tensor that indexes them: the
 *   convolutions' weights and biases, the norms' affine parameters and running
 *   statistics, the input channels of every layer that reads them, through
 *   skip concatenations, transposed convolutions, attention gates and
 *   deep-supervision heads.
 *
 * The structurally pruned network is the same module tree with smaller
 * parameter tensors (each re-pointed in place at its kept slice): libtorch
 * runs it as it is, the ONNX export traces it like any network (smaller
 * Conv nodes and initializers), and a model folder stores its weights with
 * their pruned shapes and a pruning record, which loadWeightsInto reads to
 * shrink a freshly built network before loading. A narrower NetworkConfig
 * would only describe networks whose every layer shrinks with `features`,
 * which the groups left whole (logits heads, transformer blocks, channels a
 * reshape or a channel-wise attention mixes) do not allow.
 *
 * The dependencies come from a trace of the forward with the root module in
 * training mode and every submodule in eval mode: the root then runs every
 * deep-supervision head (which an eval forward skips) while norms use their
 * running statistics and dropout is off. Fine-tuning, when asked, is the
 * trainer's (pipeline/finetune-pruned.ts); its record goes in the summary.
 */
import * as torch from '@medseg/torch';
import type { Tensor, TracedGraph } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { analyzeChannels, weightedLayers, type AxisUse } from './prune-graph.ts';

/** Bad pruning input: a sparsity out of range, a network with nothing to prune. */
export class PruneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PruneError';
  }
}

export interface PruneSettings {
  /** Fraction removed: of the pruned layers' weights (magnitude) or of each prunable group's channels (structured), in [0, 1). */
  sparsity: number;
  structured?: boolean;
  /** Magnitude pruning: one threshold over every pruned layer (default) or each layer to the sparsity on its own. */
  scope?: 'global' | 'layer';
}

export interface LayerSparsity {
  name: string;
  elements: number;
  zeros: number;
}

export interface PrunedGroup {
  /** Weights that make these channels. */
  producers: string[];
  before: number;
  after: number;
  /** Indices (of the unpruned network) of the removed channels. */
  removed: number[];
}

export interface PruneSummary {
  kind: 'magnitude' | 'channels';
  sparsity: number;
  scope?: 'global' | 'layer';
  /** Magnitude: the global threshold (weights with a smaller magnitude are zero). */
  threshold?: number;
  /** Magnitude: every pruned layer's zeros after pruning. */
  layers?: LayerSparsity[];
  /** Channels: the groups that lost channels. */
  groups?: PrunedGroup[];
  /** Channels: groups left whole, with why. */
  leftWhole?: { producers: string[]; channels: number; reason: string }[];
  /** Layers never pruned because they make an output (logits heads). */
  heads: string[];
  /** Trainable parameter elements before and after (magnitude: the non-zero ones). */
  parameters: { before: number; after: number };
  /** Training after pruning, or false when the pruned weights are used as they are. */
  fineTuned: false | FineTuneRecord;
}

/** What fine-tuning after pruning did: the trainer on the model's own training cases within a time budget. */
export interface FineTuneRecord {
  /** The budget asked for and the wall time used (minutes). */
  budgetMinutes: number;
  minutes: number;
  /** Epochs (the last one possibly cut short by the budget) and optimizer steps run. */
  epochs: number;
  iterations: number;
  stoppedBy: 'epochs' | 'early-stopping' | 'time-budget';
  /** Learning rate of the fine-tuning (the plan's times lrScale, decayed over the budget by the plan's schedule). */
  lr: number;
  lrScale: number;
  /** Weights kept: the epoch with the best mean validation Dice (on the preprocessed grid, no TTA). */
  bestEpoch: number;
  validationDice: number;
  /** Mean validation Dice of the pruned network before fine-tuning, on the same cases the same way. */
  validationDiceBefore: number;
  trainingCases: number;
  validationCases: number;
  /** Magnitude pruning: the zeros held fixed by masks after every step. */
  maskedZeros?: number;
}

/** A tensor axis structured pruning shortened: which of its indices went. */
export interface TensorSlice {
  name: string;
  axis: number;
  role: AxisUse['role'];
  size: number;
  removed: number[];
}

export interface PruneResult {
  summary: PruneSummary;
  /** Structured: every tensor axis that lost indices (a weight that read removed channels has role 'in'). */
  slices: TensorSlice[];
}

/** Traces `net` as the module comment says, on zeros of `inputShape` ([1, C, ...patch]). */
export function traceForPruning(net: SegmentationNetwork, inputShape: number[]): TracedGraph {
  const wasTraining = net.training;
  net.eval();
  net.training = true;
  const x = torch.zeros(inputShape);
  try {
    const r = torch.trace(net, [x]);
    torch.dispose(r.outputs);
    return r.graph;
  } finally {
    x.dispose();
    net.train(wasTraining);
  }
}

function checkSparsity(s: number): void {
  if (!(Number.isFinite(s) && s >= 0 && s < 1)) throw new PruneError(`the pruning sparsity must be in [0, 1), got ${s}`);
}

const nonZero = (net: torch.nn.Module): number => torch.tidy(() => net.parameters().reduce((a, p) => (p.requiresGrad ? a + p.ne(0).sum().item() : a), 0));

/**
 * Zeroes the k smallest magnitudes over all arrays (ties at the threshold in
 * array order, so exactly k go); returns the threshold.
 */
function zeroSmallest(arrays: Float32Array[], k: number): number {
  if (k <= 0) return 0;
  const all = new Float32Array(arrays.reduce((a, w) => a + w.length, 0));
  let o = 0;
  for (const w of arrays) for (let i = 0; i < w.length; i++) all[o++] = Math.abs(w[i]!);
  all.sort();
  const t = all[k - 1]!;
  let below = 0;
  for (let i = 0; i < k; i++) if (all[i]! < t) below++;
  let ties = k - below;
  for (const w of arrays)
    for (let i = 0; i < w.length; i++) {
      const a = Math.abs(w[i]!);
      if (a < t) w[i] = 0;
      else if (a === t && ties > 0) {
        w[i] = 0;
        ties--;
      }
    }
  return t;
}

/** Magnitude pruning in place (module comment). */
export function pruneMagnitude(net: SegmentationNetwork, inputShape: number[], o: PruneSettings): PruneResult {
  checkSparsity(o.sparsity);
  const scope = o.scope ?? 'global';
  const layers = weightedLayers(traceForPruning(net, inputShape));
  const state = net.stateDict();
  const pruned = layers.filter((l) => !l.head);
  if (pruned.length === 0) throw new PruneError('the network has no convolution or linear weights to prune besides its output heads');
  const before = nonZero(net);
  const data = pruned.map((l) => state.get(l.name)!.toFloat32Array());
  let threshold: number | undefined;
  if (scope === 'global') threshold = zeroSmallest(data, Math.round(o.sparsity * data.reduce((a, w) => a + w.length, 0)));
  else for (const w of data) zeroSmallest([w], Math.round(o.sparsity * w.length));
  torch.noGrad(() =>
    pruned.forEach((l, i) => {
      const t = state.get(l.name)!;
      torch.tidy(() => t.copy_(torch.tensor(data[i]!, t.shape)));
    }),
  );
  const summary: PruneSummary = {
    kind: 'magnitude',
    sparsity: o.sparsity,
    scope,
    ...(threshold !== undefined ? { threshold } : {}),
    layers: pruned.map((l, i) => ({ name: l.name, elements: data[i]!.length, zeros: data[i]!.reduce((a, v) => a + (v === 0 ? 1 : 0), 0) })),
    heads: layers.filter((l) => l.head).map((l) => l.name),
    parameters: { before, after: nonZero(net) },
    fineTuned: false,
  };
  return { summary, slices: [] };
}

/** Mean |w| of each index along `axis`. */
function filterScores(w: Tensor, axis: number): number[] {
  return torch.tidy(() => (axis === 0 ? w : w.transpose(0, axis)).abs().flatten(1).mean(1).toArray());
}

/** Channel pruning in place (module comment). */
export function pruneChannels(net: SegmentationNetwork, inputShape: number[], o: PruneSettings): PruneResult {
  checkSparsity(o.sparsity);
  const g = traceForPruning(net, inputShape);
  const a = analyzeChannels(g);
  const heads = weightedLayers(g)
    .filter((l) => l.head)
    .map((l) => l.name);
  const state = net.stateDict();
  const before = net.numParameters();
  const removed = new Map<number, number[]>();
  const groups: PrunedGroup[] = [];
  const leftWhole: NonNullable<PruneSummary['leftWhole']> = [];
  for (const gr of a.groups) {
    if (gr.producers.length === 0) continue;
    if (gr.frozen) {
      leftWhole.push({ producers: gr.producers, channels: gr.size, reason: gr.frozen });
      continue;
    }
    const r = Math.min(gr.size - 1, Math.floor(o.sparsity * gr.size));
    if (r <= 0) continue;
    const scores = new Array<number>(gr.size).fill(0);
    for (const p of gr.producers) {
      const use = a.uses.find((u) => u.name === p && u.role === 'out')!;
      filterScores(state.get(p)!, use.axis).forEach((s, c) => (scores[c]! += s));
    }
    const order = scores.map((s, c) => [s, c] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    const gone = order
      .slice(0, r)
      .map(([, c]) => c)
      .sort((x, y) => x - y);
    removed.set(gr.id, gone);
    groups.push({ producers: gr.producers, before: gr.size, after: gr.size - r, removed: gone });
  }
  if (groups.length === 0) {
    const why = leftWhole.length ? ` (${leftWhole[0]!.producers[0]}: ${leftWhole[0]!.reason})` : '';
    throw new PruneError(
      `no channels to prune at sparsity ${o.sparsity}: every channel group is left whole or too small${why}; ${net.config.architecture} mixes its channels where this analysis cannot follow them`,
    );
  }

  // The indices each tensor axis keeps: its layout's atoms end to end, each without its group's removed channels.
  const slices: TensorSlice[] = [];
  const keepOf = new Map<string, { axis: number; keep: number[] }[]>();
  for (const u of a.uses) {
    const keep: number[] = [];
    const gone: number[] = [];
    let offset = 0;
    for (const atom of u.layout) {
      const size = a.atomSize(atom);
      const rem = new Set(removed.get(a.groupOf(atom)) ?? []);
      for (let c = 0; c < size; c++) (rem.has(c) ? gone : keep).push(offset + c);
      offset += size;
    }
    if (gone.length === 0) continue;
    slices.push({ name: u.name, axis: u.axis, role: u.role, size: offset, removed: gone });
    keepOf.set(u.name, [...(keepOf.get(u.name) ?? []), { axis: u.axis, keep }]);
  }
  net.zeroGrad();
  for (const [name, list] of keepOf) {
    const t = state.get(name)!;
    torch.tidy(() => {
      torch.noGrad(() => {
        let cur: Tensor = t;
        for (const { axis, keep } of list) cur = cur.indexSelect(axis, torch.tensor(keep, [keep.length], { dtype: 'int64' }));
        t.setData_(cur.contiguous());
      });
    });
  }
  const summary: PruneSummary = {
    kind: 'channels',
    sparsity: o.sparsity,
    groups,
    leftWhole,
    heads,
    parameters: { before, after: net.numParameters() },
    fineTuned: false,
  };
  return { summary, slices };
}

/** Magnitude or channel pruning as the settings say. */
export function pruneNetwork(net: SegmentationNetwork, inputShape: number[], o: PruneSettings): PruneResult {
  return o.structured ? pruneChannels(net, inputShape, o) : pruneMagnitude(net, inputShape, o);
}
