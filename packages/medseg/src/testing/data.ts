import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultDataRoot, repoRoot } from '../util/data-root.ts';

/**
 * The real labelled datasets (util/data-root.ts says where). Tests fail loudly
 * when the folder is absent rather than silently passing on nothing.
 */
export function dataDir(): string {
  const dir = defaultDataRoot();
  if (!existsSync(dir)) {
    throw new Error(`medseg test data not found at ${dir}: set MEDSEG_DATA to the shared data folder`);
  }
  return dir;
}

export function dataPath(...parts: string[]): string {
  return resolve(dataDir(), ...parts);
}

export { repoRoot };
