/**
 * The compute device of a prediction. The CPU is the tested path. CUDA needs
 * a libtorch built with it; whether the loaded one has it comes from
 * libtorch itself (at::hasCUDA through the binding), and the message names
 * the libtorch libraries this process mapped (/proc/self/maps on Linux).
 */
import { readFileSync } from 'node:fs';
import * as torch from '@medseg/torch';
import { PredictOptionError } from './output-format.ts';

export const DEVICES = ['cpu', 'cuda'] as const;
export type Device = (typeof DEVICES)[number];

/** Paths of the libtorch / c10 shared libraries mapped into this process (empty where /proc is absent). */
export function loadedTorchLibraries(): string[] {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return [];
  }
  const libs = new Set<string>();
  for (const line of maps.split('\n')) {
    const path = line.slice(line.indexOf('/'));
    if (line.includes('/') && /\/lib(torch|c10)[\w-]*\.so/.test(path)) libs.add(path.trim());
  }
  return [...libs].sort();
}

/** Throws a PredictOptionError when `device` cannot run a prediction in this process. */
export function requireDevice(device: string): asserts device is Device {
  if (device === 'cpu') return;
  if (device !== 'cuda') throw new PredictOptionError(`unknown device '${device}': use ${DEVICES.join(' or ')}`);
  if (!torch.cudaAvailable()) {
    const libs = loadedTorchLibraries();
    throw new PredictOptionError(
      `--device cuda needs a CUDA-enabled libtorch, and the loaded one has no CUDA support` +
        `${libs.length ? ` (${libs.join(', ')})` : ''}. Build the binding against one: LIBTORCH=/path/to/libtorch npm run build:native; or use --device cpu`,
    );
  }
  // The libtorch has CUDA, but medseg's nn modules keep their parameters on the CPU (they have no device transfer).
  throw new PredictOptionError('--device cuda: this libtorch has CUDA, but medseg networks run on the CPU only in this version; use --device cpu');
}
