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

/**
 * The caching tensor allocator (native/src/caching_allocator.cc): bytes of
 * freed tensor memory kept for reuse, at most capBytes (MEDSEG_ALLOC_CACHE_MB,
 * default a quarter of the usable memory and at least 1 GiB), and how many
 * large allocations it served (hits) or had to map (misses).
 */
export function allocatorStats(): { cachedBytes: number; hits: number; misses: number; evictions: number; capBytes: number } {
  return native.allocatorStats();
}

/** Returns the allocator's cached blocks to the system, e.g. between training and a long inference job. */
export function emptyAllocatorCache(): void {
  native.emptyAllocatorCache();
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
