/**
 * What every architecture gives back. What the plan tells an architecture
 * (NetworkConfig) is part of the plan (plan/types.ts).
 */
import type { Tensor, nn } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';

/**
 * A segmentation network. forward returns logits [N, numClasses, ...spatial];
 * with deep supervision in training mode, a list of logits from the highest
 * resolution down (the first has the input's size).
 */
export interface SegmentationNetwork extends nn.Module {
  readonly config: NetworkConfig;
  forward(x: Tensor): Tensor | Tensor[];
  /** Named intermediate activations and attention maps of the last forward (explainability). */
  lastActivations?(): Map<string, Tensor>;
}
