/** Engine facts and settings: threads, version, live tensor count, devices. */
import { native } from './native.ts';

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Native tensor handles alive right now: flat across training steps means no leak. */
export function liveTensors(): number {
  return native.liveTensors();
}

export const torchVersion: string = native.torchVersion;

export function parallelInfo(): string {
  return native.parallelInfo();
}

/** Whether the linked libtorch can run on a CUDA device. */
export function cudaAvailable(): boolean {
  return native.hasCuda;
}

/** Throws a clear error if `device` cannot be used with this libtorch build. */
export function checkDevice(device: string): void {
  if (device === 'cpu') return;
  if (device.startsWith('cuda')) {
    if (!native.hasCuda) {
      throw new Error(
        `device '${device}' requested but this libtorch build has no CUDA support: ` +
          'point LIBTORCH at a CUDA libtorch and rebuild (npm run build:native), or use device "cpu"',
      );
    }
    return;
  }
  throw new Error(`unknown device '${device}': use 'cpu' or 'cuda[:N]'`);
}
