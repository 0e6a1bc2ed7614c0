/**
 * Where the repository and the shared data folder are: the labelled datasets
 * live outside the repository, in ../shared/data beside its root, unless
 * MEDSEG_DATA names another folder.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is packages/medseg/src/util/data-root.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The shared data folder: $MEDSEG_DATA, else ../shared/data beside the repository root. It may not exist. */
export function defaultDataRoot(): string {
  return process.env.MEDSEG_DATA ?? resolve(repoRoot, '../shared/data');
}
