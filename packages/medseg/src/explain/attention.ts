/**
 * Attention maps of the networks that have attention:
 *
 * - Attention rollout (Abnar & Zuidema 2020) over every transformer block of
 *   a token grid: each block's head-averaged attention A gets the residual
 *   path as identity, Â = (A + I) / 2, rows renormalised to sum 1, and the
 *   blocks are multiplied in order, R = Â_L ... Â_2 Â_1. Row q of R says how
 *   much each input token flows into output token q. Segmentation has no
 *   class token, so the map is the mean of the rows of the tokens in the
 *   target region (weighted by how much of each token the region covers).
 *   TransUNet and HybridNet have global blocks ('transformer.blockI.attn',
 *   'transformer.stageS.blockI.attn'); Swin-UNETR's window attention is
 *   scattered into the stage's full token-by-token matrix (a token attends
 *   only inside its window; the shifted blocks move the windows), so
 *   rollout over a stage's blocks traces attention across windows.
 * - The coefficients of the additive attention gates (Attention U-Net,
 *   HybridNet: 'attention.gateS') and HybridNet's CBAM spatial maps, as they are.
 *
 * Every map is upsampled (linear) to the tile and stitched like prediction.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { lastActivations } from '../models/registry.ts';
import { SwinBlock, windowPartition } from '../models/blocks-swin.ts';
import { cumulativeStrides } from '../models/blocks-network.ts';
import { forwardLogits } from './layers.ts';
import { MedsegExplainError } from './errors.ts';

/** Adds the residual identity and renormalises the rows: (A + I) / 2 with rows summing to 1. A: [N, L, L]. */
export function withResidual(attention: Tensor): Tensor {
  return torch.tidy(() => {
    const L = attention.size(-1);
    const a = attention.add(torch.eye(L)).mul(0.5);
    return a.div(a.sum(-1, true));
  });
}

/** Rollout of head-averaged attentions [N, L, L], first block first: R = Â_last ... Â_first. */
export function attentionRollout(attentions: Tensor[]): Tensor {
  if (attentions.length === 0) throw new MedsegExplainError('NOT_SUPPORTED', 'attention rollout needs at least one attention matrix');
  return torch.tidy(() => {
    let r = withResidual(attentions[0]!);
    for (const a of attentions.slice(1)) r = withResidual(a).matmul(r);
    return r;
  });
}

/** The rollout's map over input tokens [N, L]: the mean of the rows of the queried tokens, weighted by queryWeights [N, L] (all tokens equally when null). */
export function rolloutMap(rollout: Tensor, queryWeights: Tensor | null): Tensor {
  return torch.tidy(() => {
    if (!queryWeights) return rollout.mean(1);
    const w = queryWeights.div(queryWeights.sum(-1, true).clamp(1e-12, null));
    return w.unsqueeze(1).matmul(rollout).squeeze(1);
  });
}

/**
 * A Swin block's window attention [nW, heads, T, T] (batch 1) as the full
 * token-by-token matrix [1, L, L] of its unpadded, unshifted grid: each
 * window's head-averaged attention placed at its tokens' global indices.
 * Padding tokens (maps not a multiple of the window) are dropped and the rows
 * renormalised.
 */
export function swinGlobalAttention(block: SwinBlock, windowAttention: Tensor, grid: number[]): Tensor {
  return torch.tidy(() => {
    const w = block.window;
    const padded = grid.map((s, i) => Math.ceil(s / w[i]!) * w[i]!);
    const shift = block.shift ? w.map((wi, i) => (grid[i]! > wi ? Math.floor(wi / 2) : 0)) : w.map(() => 0);
    const L = grid.reduce((a, b) => a * b, 1);
    // Global token index of every window slot, -1 for padding, through the block's own pad, roll and partition.
    let ids = torch.arange(0, L, 1, { dtype: 'float32' }).reshape([1, ...grid, 1]);
    const pads: number[] = [0, 0];
    for (let a = grid.length - 1; a >= 0; a--) pads.push(0, padded[a]! - grid[a]!);
    if (padded.some((p, i) => p !== grid[i])) ids = torch.F.pad(ids, pads, 'constant', -1);
    if (shift.some((s) => s > 0))
      ids = ids.roll(
        shift.map((s) => -s),
        grid.map((_, i) => i + 1),
      );
    const slots = windowPartition(ids, w).squeeze(-1); // [nW, T]
    const nW = slots.size(0);
    if (windowAttention.size(0) !== nW)
      throw new MedsegExplainError('NOT_SUPPORTED', `Swin attention has ${windowAttention.size(0)} windows, the grid [${grid}] gives ${nW}`);
    const attn = windowAttention.mean(1).toFloat32Array(); // [nW, T, T]
    const slot = slots.toFloat32Array();
    const T = slots.size(1);
    const full = new Float32Array(L * L);
    for (let win = 0; win < nW; win++) {
      for (let i = 0; i < T; i++) {
        const q = slot[win * T + i]!;
        if (q < 0) continue;
        for (let j = 0; j < T; j++) {
          const k = slot[win * T + j]!;
          if (k >= 0) full[q * L + k] = attn[(win * T + i) * T + j]!;
        }
      }
    }
    const m = torch.tensor(full, [1, L, L]);
    return m.div(m.sum(-1, true).clamp(1e-12, null));
  });
}

/** The token grid (spatial size) of a stage whose maps have L tokens, for a tile of `patch`: the stage whose cumulative stride gives L tokens. */
function tokenGrid(net: SegmentationNetwork, patch: number[], L: number): number[] {
  for (const cum of cumulativeStrides(net.config.strides)) {
    const grid = patch.map((p, i) => Math.floor(p / cum[i]!));
    if (grid.reduce((a, b) => a * b, 1) === L) return grid;
  }
  throw new MedsegExplainError('NOT_SUPPORTED', `no stage of the network has ${L} tokens for a tile of [${patch}]`);
}

/** Named attention matrices of the last forward, grouped by token grid ('transformer', 'transformer.stage3', 'swin.stage1'), in block order. */
function attentionGroups(net: SegmentationNetwork, acts: Map<string, Tensor>, patch: number[]): Map<string, { grid: number[]; matrices: Tensor[] }> {
  const groups = new Map<string, { grid: number[]; matrices: Tensor[] }>();
  for (const [name, t] of acts) {
    const m = /^(.*)\.block(\d+)\.attn$/.exec(name);
    if (!m) continue;
    const group = m[1]!;
    let matrix: Tensor;
    let grid: number[];
    if (t.ndim === 4) {
      // Swin window attention [nW, heads, T, T]: scatter into the stage's grid.
      const stage = /^swin\.stage(\d+)$/.exec(group);
      const stages = (net as unknown as { stages?: torch.nn.ModuleList<torch.nn.Module> }).stages;
      const block = stage && stages ? (stages.at(Number(stage[1]) - 1) as unknown as { blocks: torch.nn.ModuleList<SwinBlock> }).blocks.at(Number(m[2])) : null;
      if (!block) continue;
      const cum = cumulativeStrides(net.config.strides)[Number(stage![1])]!;
      grid = patch.map((p, i) => Math.floor(p / cum[i]!));
      matrix = swinGlobalAttention(block, t, grid);
    } else {
      if (t.size(0) !== 1) throw new MedsegExplainError('NOT_SUPPORTED', 'attention maps are computed one tile at a time (batch 1)');
      matrix = t;
      grid = tokenGrid(net, patch, t.size(-1));
    }
    const g = groups.get(group) ?? { grid, matrices: [] };
    g.matrices.push(matrix);
    groups.set(group, g);
  }
  return groups;
}

/** The region's share of every token of a grid [1, L] (its mean over each token's voxels). */
function regionTokenWeights(region: Tensor, grid: number[]): Tensor {
  return torch.tidy(() => torch.F.adaptiveAvgPool(region.unsqueeze(0).unsqueeze(0), grid).flatten(1));
}

const upsampleTo = (map: Tensor, grid: number[], patch: number[]): Tensor =>
  torch.tidy(() => {
    const g = map.reshape([1, 1, ...grid]);
    return (grid.join(',') === patch.join(',') ? g : torch.F.interpolate(g, { size: patch, mode: 'linear' })).reshape(patch);
  });

/**
 * Every attention map of one tile x [1, C, ...patch] for the region [...patch]:
 * 'rollout.<group>' per token grid (zeros where the region is empty in the
 * tile), 'attention.gateS' and 'cbam.skipS.spatial' as the network computed
 * them. Names in the network's recording order; maps [...patch].
 */
export function attentionMapsTile(net: SegmentationNetwork, x: Tensor, region: Tensor): Map<string, Tensor> {
  const patch = x.shape.slice(2);
  return torch.tidy(() =>
    torch.noGrad(() => {
      forwardLogits(net, x);
      const acts = lastActivations(net);
      const out = new Map<string, Tensor>();
      const empty = region.sum().item() === 0;
      for (const [group, { grid, matrices }] of attentionGroups(net, acts, patch)) {
        const map = empty ? torch.zeros([1, grid.reduce((a, b) => a * b, 1)]) : rolloutMap(attentionRollout(matrices), regionTokenWeights(region, grid));
        out.set(`rollout.${group}`, upsampleTo(map, grid, patch));
      }
      for (const [name, t] of acts) {
        if (!/^attention\.gate\d+$/.test(name) && !/^cbam\.skip\d+\.spatial$/.test(name)) continue;
        out.set(name, upsampleTo(t, t.shape.slice(2), patch));
      }
      return out;
    }),
  );
}

/** The names attentionMapsTile gives for this network and patch (one probing forward on zeros); empty for a network without attention. */
export function attentionMapNames(net: SegmentationNetwork, patch: number[]): string[] {
  return torch.tidy(() => {
    const x = torch.zeros([1, net.config.inChannels, ...patch]);
    return [...attentionMapsTile(net, x, torch.ones(patch)).keys()];
  });
}
