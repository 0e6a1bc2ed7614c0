/**
 * Test-time augmentation levels (torch-free, for the CLI): 'none' one pass;
 * 'mirror' the mirrored passes over every spatial axis (2^d); 'full' the
 * plan's (mirrored and, for 2D plans trained with transposition, also
 * transposed: 8 passes in 2D).
 */
export type TtaLevel = 'none' | 'mirror' | 'full';
export const TTA_LEVELS: readonly TtaLevel[] = ['none', 'mirror', 'full'];
