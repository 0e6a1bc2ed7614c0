import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * The real labelled datasets live outside the repository (../shared/data beside
 * the project root); MEDSEG_DATA overrides. Tests fail loudly when it is absent
 * rather than silently passing on nothing.
 */
export function dataDir(): string {
  const dir = process.env.MEDSEG_DATA ?? resolve(repoRoot, '../shared/data');
  if (!existsSync(dir)) {
    throw new Error(`medseg test data not found at ${dir}: set MEDSEG_DATA to the shared data folder`);
  }
  return dir;
}

export function dataPath(...parts: string[]): string {
  return resolve(dataDir(), ...parts);
}

export { repoRoot };
