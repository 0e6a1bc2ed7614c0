/**
 * Which weights of a network are its encoder: what transfer learning copies
 * with `--init-part encoder` and what a separate encoder learning rate
 * applies to. Encoder = the downsampling path and what runs on it before the
 * decoder (stems, transformer blocks after encoder stages, Swin's patch
 * embedding, stages and merges); the upsampling path, skip refinements,
 * attention gates and heads are not.
 */
import type { Tensor, nn } from '@medseg/torch';
import { UNetPlusPlus } from './unetpp.ts';

const ENCODER_PREFIXES = ['stem.', 'encoder.', 'encoder_post.', 'patch_embed.', 'embed_norm.', 'stages.', 'merges.'];

/** State-dict names (parameters and buffers) of the encoder of `net`. */
export function encoderStateNames(net: nn.Module): Set<string> {
  const all = net.stateDict();
  if (net instanceof UNetPlusPlus) {
    // UNet++ registers its nodes as one flat list; the encoder is column 0, X[i][0].
    const mine = new Set<Tensor>();
    for (const row of net.nodes) for (const t of row[0]!.stateDict().values()) mine.add(t);
    return new Set([...all].filter(([, t]) => mine.has(t)).map(([n]) => n));
  }
  return new Set([...all.keys()].filter((n) => ENCODER_PREFIXES.some((p) => n.startsWith(p))));
}
