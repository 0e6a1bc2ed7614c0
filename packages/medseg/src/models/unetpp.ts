/**
 * UNet++ (Zhou et al. 2018/2019): nested, densely connected skip pathways.
 * Node X[i][j] (depth i, column j) convolves the concatenation of all earlier
 * nodes of its row X[i][0..j-1] and the upsampled X[i+1][j-1]; X[i][0] is the
 * encoder. Deep supervision puts a 1x1 head on every top-row node X[0][1..n-1]
 * (all at full resolution); the list starts with the deepest one, X[0][n-1],
 * which is also the output in eval mode.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, type Dims, StackedConvs } from './blocks-conv.ts';
import { checkInput, initHe, Upsampler } from './blocks-network.ts';
import { SegNetBase } from './encoder-decoder.ts';

const { nn } = torch;

export class UNetPlusPlus extends SegNetBase {
  /** nodes[i][j] for i + j <= n - 1 (nodes[i][0] = encoder stage i). */
  readonly nodes: torch.nn.UnaryModule[][] = [];
  readonly ups: (Upsampler | null)[][] = [];
  heads: torch.nn.ModuleList<torch.nn.UnaryModule>;
  /** Module name of X[n-2][1], the first decoding node under the bottleneck (U-Net's decoder.0). */
  private readonly firstDecodingNode: string;
  constructor(config: NetworkConfig) {
    super(config);
    const c = config;
    const dims = c.dims as Dims;
    const n = c.features.length;
    const f = c.features;
    const nodeList = this.module('nodes', new nn.ModuleList<torch.nn.Module>());
    let firstDecodingNode = '';
    for (let i = 0; i < n; i++) {
      this.nodes.push([]);
      this.ups.push([]);
      for (let j = 0; i + j <= n - 1; j++) {
        const block =
          j === 0
            ? new StackedConvs(dims, i === 0 ? c.inChannels : f[i - 1]!, f[i]!, c.kernelSizes[i]!, { stride: c.strides[i], norm: c.norm, dropout: c.dropout })
            : new StackedConvs(dims, f[i]! * (j + 1), f[i]!, c.kernelSizes[i]!, { norm: c.norm, dropout: c.dropout });
        const up = j === 0 ? null : new Upsampler(dims, f[i + 1]!, f[i]!, c.strides[i + 1]!, c.upsample ?? 'transpose');
        // Registered as one flat list, named by position: nodes.<k> = X[i][j] block, its upsampler next to it.
        if (i === n - 2 && j === 1) firstDecodingNode = `nodes.${nodeList.length}.block`;
        const holder = new NodeHolder(block, up);
        nodeList.push(holder);
        this.nodes[i]!.push(block);
        this.ups[i]!.push(up);
      }
    }
    this.heads = this.module('seg_heads', new nn.ModuleList<torch.nn.UnaryModule>());
    const nHeads = c.deepSupervision ? n - 1 : 1;
    for (let k = 0; k < nHeads; k++) this.heads.push(conv(dims, f[0]!, c.numClasses, 1, { padding: 0 }));
    this.firstDecodingNode = firstDecodingNode;
    initHe(this);
  }

  /** Grad-CAM's default layer (explain/layers.ts): the node that first decodes the bottleneck, as U-Net's decoder.0 does. */
  gradCamLayer(): string {
    return this.firstDecodingNode;
  }

  forward(x: Tensor): Tensor | Tensor[] {
    const c = this.config;
    checkInput(c, x);
    this.beginForward();
    const n = c.features.length;
    const X: Tensor[][] = Array.from({ length: n }, () => []);
    // Column by column, so every node's inputs exist: X[i][j] needs X[i+1][j-1].
    for (let i = 0; i < n; i++) {
      X[i]![0] = this.nodes[i]![0]!.forward(i === 0 ? x : X[i - 1]![0]!);
      this.record(`encoder.stage${i}`, X[i]![0]);
    }
    for (let j = 1; j < n; j++) {
      for (let i = 0; i + j <= n - 1; i++) {
        const up = this.ups[i]![j]!.forward(X[i + 1]![j - 1]!, X[i]![0]!.shape.slice(2));
        X[i]![j] = this.nodes[i]![j]!.forward(torch.cat([...X[i]!.slice(0, j), up], 1));
        this.record(`nested.x${i}_${j}`, X[i]![j]);
      }
    }
    const outs: Tensor[] = [];
    const useAll = c.deepSupervision && this.training;
    for (let k = 0; k < (useAll ? n - 1 : 1); k++) outs.push(this.heads.at(k).forward(X[0]![n - 1 - k]!));
    this.record('logits', outs[0]);
    return this.finish(outs);
  }
}

/** One nested node: its conv block and (for j > 0) its upsampler. */
class NodeHolder extends nn.Module {
  constructor(block: torch.nn.UnaryModule, up: Upsampler | null) {
    super();
    this.module('block', block);
    if (up) this.module('up', up);
  }
}
