/** Multiply-accumulate counting by forward hooks. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { prod } from './blocks-conv.ts';
import { WindowAttention } from './blocks-swin.ts';

const { nn } = torch;

/**
 * Multiply-accumulates of one forward, counted by forward hooks on every
 * module (a module called several times, like a recurrent unit, counts each
 * time). Counted: convolutions (output elements x in/groups x kernel volume),
 * transposed convolutions (input elements x out/groups x kernel volume),
 * linear layers (output elements x in features), nn.MultiheadAttention's
 * input projections and its two attention matmuls (Q K^T and A V), and the
 * two matmuls of WindowAttention. Not counted: norms, activations, pooling,
 * resizing, elementwise ops (they are not MACs).
 */
export function countMacsOf(net: torch.nn.Module, run: () => void): number {
  let macs = 0;
  const removers: (() => void)[] = [];
  for (const [, m] of net.namedModules()) {
    if (m instanceof nn.ConvNd) {
      const k = prod(m.weight.shape.slice(2));
      removers.push(m.registerForwardHook((_m, _in, out) => (macs += (out as Tensor).numel * m.weight.size(1) * k)));
    } else if (m instanceof nn.ConvTransposeNd) {
      const k = prod(m.weight.shape.slice(2));
      removers.push(m.registerForwardHook((_m, inputs) => (macs += (inputs[0] as Tensor).numel * m.weight.size(1) * k)));
    } else if (m instanceof nn.Linear) {
      removers.push(m.registerForwardHook((_m, _in, out) => (macs += (out as Tensor).numel * m.inFeatures)));
    } else if (m instanceof nn.MultiheadAttention) {
      removers.push(
        m.registerForwardHook((_m, inputs) => {
          const q = inputs[0] as Tensor;
          const k = (inputs[1] as Tensor | undefined) ?? q;
          const [n, l, e] = q.shape as [number, number, number];
          const s = k.size(1);
          macs += n * l * e * e + 2 * n * s * e * e + 2 * n * l * s * e;
        }),
      );
    } else if (m instanceof WindowAttention) {
      removers.push(
        m.registerForwardHook((_m, inputs) => {
          const [b, t, c] = (inputs[0] as Tensor).shape as [number, number, number];
          macs += 2 * b * t * t * c;
        }),
      );
    }
  }
  try {
    run();
  } finally {
    for (const r of removers) r();
  }
  return macs;
}
