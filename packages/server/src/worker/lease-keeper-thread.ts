/**
 * The lease keeper's thread (see lease-keeper.ts): renews the held lease
 * every heartbeatMs over its own queue connection while the main thread is
 * alive (within hungMs), and marks the lease's generation lost when a renewal is refused.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openJobQueue } from '../store/queue.ts';
import type { Lease } from '../store/jobs.ts';
import { ALIVE_AT, LOST, PROGRESS, type KeeperMessage, type KeeperSettings } from './lease-keeper.ts';

const { settings, shared } = workerData as { settings: KeeperSettings; shared: SharedArrayBuffer };
const f64 = new Float64Array(shared, 0, 2);
const i32 = new Int32Array(shared);
const queue = await openJobQueue(settings.at, { poolSize: 1, log: (m) => process.stderr.write(`[lease keeper] ${m}\n`) });

const hungMs = settings.hungMs ?? 10 * settings.leaseMs;
let held: { lease: Lease; generation: number } | undefined;
let busy = false;

parentPort!.on('message', (m: KeeperMessage) => {
  if (m.type === 'hold') held = { lease: m.lease, generation: m.generation };
  else if (held?.generation === m.generation) held = undefined;
});

setInterval(() => {
  const h = held;
  if (!h || busy) return;
  // A main thread silent this long is hung: its lease is left to expire.
  if (Date.now() - f64[ALIVE_AT]! > hungMs) return;
  busy = true;
  queue
    .heartbeat(h.lease, settings.leaseMs, f64[PROGRESS]!)
    .then((ok) => {
      if (!ok && held?.generation === h.generation) Atomics.store(i32, LOST, h.generation);
    })
    .catch((e: unknown) => process.stderr.write(`[lease keeper] heartbeat failed: ${(e as Error).message}\n`))
    .finally(() => {
      busy = false;
    });
}, settings.heartbeatMs);
parentPort!.postMessage('ready');
