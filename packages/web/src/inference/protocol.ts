/** Messages between the page and its inference worker. */
import type { WebUncertainty } from '@medseg/medseg/deploy/browser/predict-case';

export type Zyx = [number, number, number];

export type ToWorker =
  | { type: 'load'; id: number; model: ArrayBuffer; webgpu: boolean }
  | { type: 'run'; id: number; image: Float32Array; shape: Zyx; spacing: Zyx; tta: boolean; uncertainty: boolean }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'loaded'; id: number; seconds: number; threads: number; provider: 'webgpu' | 'wasm'; note: string }
  | { type: 'progress'; id: number; done: number; total: number }
  | { type: 'done'; id: number; labels: Uint8Array; seconds: number; tiles: number; passesPerTile: number; uncertainty?: WebUncertainty }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number; name: string; message: string };
