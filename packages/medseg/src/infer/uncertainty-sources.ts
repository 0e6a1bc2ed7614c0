/** Where uncertainty members come from (infer/uncertainty.ts); engine-free, so the CLI can list them in its help. */
export type UncertaintySource = 'ensemble' | 'tta' | 'mc-dropout';

export const UNCERTAINTY_SOURCES: readonly UncertaintySource[] = ['ensemble', 'tta', 'mc-dropout'];
