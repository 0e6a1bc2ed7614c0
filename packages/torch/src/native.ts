/**
 * Loads the compiled libtorch binding. OPENBLAS_NUM_THREADS must be set before
 * libopenblas is loaded (it is pulled in with the addon), so it is set here,
 * first: OpenBLAS on one thread leaves the cores to libtorch's intra-op pool,
 * which runs on every core, so the two thread pools do not compete for them
 * (bench/results/train-step.json and train-step-openblas-openmp.json time
 * both settings). Both stay overridable from the environment.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.OPENBLAS_NUM_THREADS ??= '1';
// libgomp (libtorch's intra-op pool) reads these when it loads. By default
// its threads spin ~300k iterations waiting for work after every parallel
// region: fine on an idle machine, ruinous when anything else wants a core
// (other processes, our own data-loading thread). Passive waiting after a
// short spin (10k) keeps back-to-back ops fast and yields the core soon after
// (bench/results/train-step-spin-loaded.json, train-step-passive-loaded.json
// and train-step-spin10k-loaded.json time the default, passive without spin
// and this setting on a loaded machine).
if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
  process.env.OMP_WAIT_POLICY = 'PASSIVE';
  process.env.GOMP_SPINCOUNT = '10000';
}

export interface NativeTensor {
  readonly shape: number[];
  readonly dtypeCode: number;
  readonly numel: number;
  readonly requiresGrad: boolean;
  readonly device: string;
  readonly disposed: boolean;
  dispose(): void;
  /** Reports the tensor's storage bytes to V8 as external memory (once). */
  reportMemory(): void;
}

/** Opaque handle of a joined c10d process group. */
export type NativeGroup = { readonly __group: unique symbol };

export interface NativeJoinOptions {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  interface?: string;
  hostname?: string;
  threads?: number;
}

/** Opaque seeded generator handle. */
export type NativeGenerator = { readonly __generator: unique symbol };

export interface NativeBinding {
  NativeTensor: new (...args: never[]) => NativeTensor;
  torchVersion: string;
  hasCuda: boolean;
  lookupOp(name: string, overload: string): number;
  opSchema(id: number): string;
  callOp(id: number, args: unknown[]): unknown;
  fromBuffer(buf: ArrayBufferView | ArrayBuffer, shape: number[], dtypeCode: number): NativeTensor;
  toBuffer(t: NativeTensor): ArrayBuffer;
  sharedBuffer(t: NativeTensor): ArrayBuffer;
  liveTensors(): number;
  /** The caching tensor allocator: freed large blocks kept for reuse, and how often a request was served from them. */
  allocatorStats(): { cachedBytes: number; hits: number; misses: number; evictions: number; capBytes: number };
  /** Unmaps every cached block (RSS drops to what live tensors use). */
  emptyAllocatorCache(): void;
  /** V8's total of external memory reported by addons, in bytes. */
  externalMemory(): number;
  backward(t: NativeTensor, grad: NativeTensor | null, retainGraph: boolean, createGraph: boolean): void;
  getGrad(t: NativeTensor): NativeTensor | null;
  setGrad(t: NativeTensor, g: NativeTensor | null): void;
  setRequiresGrad(t: NativeTensor, flag: boolean): void;
  retainGrad(t: NativeTensor): void;
  isLeaf(t: NativeTensor): boolean;
  gradFnName(t: NativeTensor): string | null;
  registerHook(t: NativeTensor, fn: (grad: NativeTensor) => NativeTensor | undefined | void): number;
  removeHook(t: NativeTensor, id: number): void;
  setGradEnabled(flag: boolean): boolean;
  isGradEnabled(): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  parallelInfo(): string;
  manualSeed(seed: number): void;
  makeGenerator(seed: number): NativeGenerator;
  generatorState(g?: NativeGenerator | null): NativeTensor;
  setGeneratorState(g: NativeGenerator | null, state: NativeTensor): void;
  autocastState(): { enabled: boolean; dtypeCode: number; cacheEnabled: boolean };
  setAutocast(enabled: boolean, dtypeCode: number, cacheEnabled: boolean): void;
  autocastIncrementNesting(): number;
  autocastDecrementNesting(): number;
  autocastClearCache(): void;
  joinGroup(o: NativeJoinOptions): Promise<NativeGroup>;
  allReduceSum(g: NativeGroup, tensors: NativeTensor[]): Promise<void>;
  broadcast(g: NativeGroup, tensors: NativeTensor[], root: number): Promise<void>;
  barrier(g: NativeGroup): Promise<void>;
  destroyGroup(g: NativeGroup): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const candidates = [resolve(here, '../build/Release/torch_native.node'), resolve(here, '../build/Debug/torch_native.node')];
const addonPath = candidates.find((p) => existsSync(p));
if (!addonPath) {
  throw new Error(
    'medseg: the libtorch binding is not built. Run `npm run build:native` (needs `apt-get install libtorch-dev`), ' + 'or the README setup command.',
  );
}

export const native: NativeBinding = createRequire(import.meta.url)(addonPath);

/** Threads for libtorch's intra-op pool: MEDSEG_THREADS, else every core. */
const requested = Number(process.env.MEDSEG_THREADS ?? cpus().length);
native.setNumThreads(Number.isInteger(requested) && requested > 0 ? requested : cpus().length);
