/** Loader worker: loads the preprocessed cases once, then builds the batches it is asked for. */
import { parentPort, workerData } from 'node:worker_threads';
import { makeBatch, type BatchOptions } from './batch.ts';
import { loadPreprocessed } from './preprocess.ts';
import { mixSeed } from '../util/random.ts';

const { dir, ids, plan, seed, augment, batch } = workerData as {
  dir: string;
  ids: string[];
  plan: Parameters<typeof makeBatch>[1];
  seed: number;
  augment: boolean;
  batch: BatchOptions;
};
// An id listed several times (a case drawn more often, as fine-tuning on corrections does) is loaded once and shared.
const unique = [...new Set(ids)];
const loaded = new Map(await Promise.all(unique.map(async (id) => [id, await loadPreprocessed(dir, id)] as const)));
const cases = ids.map((id) => loaded.get(id)!);
parentPort!.on('message', (m: { k: number }) => {
  try {
    const b = makeBatch(cases, plan, mixSeed(seed, m.k), augment, batch);
    const buffers = [b.image.buffer, b.label.buffer, ...(b.skeleton ? [b.skeleton.buffer] : [])] as ArrayBuffer[];
    parentPort!.postMessage({ k: m.k, batch: b }, buffers);
  } catch (e) {
    parentPort!.postMessage({ k: m.k, error: (e as Error).message });
  }
});
parentPort!.postMessage({ ready: true });
