/**
 * Test-time augmentation levels (torch-free, for the CLI), cheapest first:
 * 'none' one pass; 'axis-flips' the identity and each spatial axis mirrored
 * alone (1 + d passes: 4 in 3D); 'mirror' every combination of mirrored
 * axes (2^d: nnU-Net's); 'full' the plan's (mirrored and, for 2D plans
 * trained with transposition, also transposed: 8 passes in 2D). The cheaper
 * levels apply only where the plan mirrors at all.
 */
export type TtaLevel = 'none' | 'axis-flips' | 'mirror' | 'full';
export const TTA_LEVELS: readonly TtaLevel[] = ['none', 'axis-flips', 'mirror', 'full'];
