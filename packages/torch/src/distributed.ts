/**
 * Collective communication across processes on libtorch's c10d with its Gloo
 * backend: a TCPStore rendezvous at the master's address and port (rank 0
 * serves it), then all-reduce, broadcast and barrier over Gloo's TCP
 * transport. Every collective returns a promise that settles when Gloo's own
 * threads finish it, so the Node event loop keeps running meanwhile.
 *
 * Failures are DistributedError with a code: a peer that dies closes its
 * sockets and the pending collective fails at once ('peer-lost'); a peer that
 * hangs fails it after the group's timeout ('timeout').
 */
import { createServer, type AddressInfo } from 'node:net';
import { native, type NativeGroup } from './native.ts';
import type { Tensor } from './tensor.ts';

export type DistributedErrorCode = 'rendezvous' | 'peer-lost' | 'timeout' | 'destroyed' | 'collective';

export class DistributedError extends Error {
  override readonly name = 'DistributedError';
  constructor(
    readonly code: DistributedErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface JoinOptions {
  /** Address of rank 0's store (and, on one machine, 127.0.0.1). */
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  /** Bound on the rendezvous and on every collective, at least 1000 (c10d counts connect timeouts in whole seconds); default 5 minutes. */
  timeoutMs?: number;
  /** Network interface Gloo binds (e.g. 'eth0'); default: the local address that reaches masterAddr on loopback, else the host name's. */
  interface?: string;
  /** Local address Gloo binds, when no interface is named. */
  hostname?: string;
  /** Gloo worker threads (collectives in flight at once); default libtorch's (2). */
  threads?: number;
}

const LOOPBACK = /^(127\.|localhost$|::1$)/;

function classify(what: string, e: unknown): DistributedError {
  const message = e instanceof Error ? e.message : String(e);
  if (/closed by peer|Connection reset|Broken pipe|ECONNRESET|EPIPE|Connection refused/i.test(message)) {
    return new DistributedError('peer-lost', `${what}: a peer left the group (${message})`);
  }
  if (/timed? ?out|timeout/i.test(message)) return new DistributedError('timeout', `${what}: timed out (${message})`);
  return new DistributedError('collective', `${what}: ${message}`);
}

async function settle(what: string, p: () => Promise<void>): Promise<void> {
  try {
    await p();
  } catch (e) {
    if (e instanceof DistributedError) throw e;
    throw classify(what, e);
  }
}

/** A joined group of `worldSize` processes; this process is `rank`. */
export class ProcessGroup {
  private handle: NativeGroup | null;
  private constructor(
    handle: NativeGroup,
    readonly rank: number,
    readonly worldSize: number,
  ) {
    this.handle = handle;
  }

  /** Waits until every rank has joined (or the timeout passes: DistributedError 'rendezvous'). */
  static async join(o: JoinOptions): Promise<ProcessGroup> {
    for (const [k, v] of [
      ['rank', o.rank],
      ['worldSize', o.worldSize],
      ['masterPort', o.masterPort],
    ] as const) {
      if (!Number.isInteger(v)) throw new RangeError(`ProcessGroup.join: ${k} must be an integer, got ${v}`);
    }
    if (o.worldSize < 1 || o.rank < 0 || o.rank >= o.worldSize) {
      throw new RangeError(`ProcessGroup.join: rank ${o.rank} is not in a world of ${o.worldSize}`);
    }
    const timeoutMs = o.timeoutMs ?? 5 * 60_000;
    if (!(timeoutMs >= 1000)) throw new RangeError(`ProcessGroup.join: timeoutMs must be at least 1000, got ${timeoutMs}`);
    const hostname = o.hostname ?? (o.interface === undefined && LOOPBACK.test(o.masterAddr) ? '127.0.0.1' : undefined);
    try {
      const handle = await native.joinGroup({
        masterAddr: o.masterAddr,
        masterPort: o.masterPort,
        rank: o.rank,
        worldSize: o.worldSize,
        timeoutMs,
        ...(o.interface !== undefined ? { interface: o.interface } : {}),
        ...(hostname !== undefined ? { hostname } : {}),
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
      });
      return new ProcessGroup(handle, o.rank, o.worldSize);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new DistributedError('rendezvous', `rank ${o.rank} of ${o.worldSize} could not join the group at ${o.masterAddr}:${o.masterPort}: ${message}`);
    }
  }

  private live(what: string): NativeGroup {
    if (!this.handle) throw new DistributedError('destroyed', `${what}: the process group was destroyed`);
    return this.handle;
  }

  /**
   * Sums each tensor elementwise over all ranks, in place. The tensors must be
   * contiguous, and every rank passes the same shapes in the same order. They
   * must stay alive (not disposed) until the promise settles.
   */
  allReduceSum(tensors: Tensor[]): Promise<void> {
    const g = this.live('allReduce');
    return settle('allReduce', () =>
      native.allReduceSum(
        g,
        tensors.map((t) => t.handle),
      ),
    );
  }

  /** Every rank's tensors take the root rank's values, in place. */
  broadcast(tensors: Tensor[], root = 0): Promise<void> {
    const g = this.live('broadcast');
    return settle('broadcast', () =>
      native.broadcast(
        g,
        tensors.map((t) => t.handle),
        root,
      ),
    );
  }

  /** Settles once every rank has reached the barrier. */
  barrier(): Promise<void> {
    const g = this.live('barrier');
    return settle('barrier', () => native.barrier(g));
  }

  /** Leaves the group: waits for this rank's queued collectives, stops Gloo's threads. Idempotent. */
  async destroy(): Promise<void> {
    const g = this.handle;
    this.handle = null;
    if (g) await native.destroyGroup(g);
  }
}

/** A TCP port free on this machine right now, for the master of a group on one machine. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
