/**
 * Test helper for the federation: a tiny plan (the 3D fixture U-Net, 16^3
 * patches, two iterations an epoch), a few real hippocampus cases imported
 * into a temporary dataset and split across site folders, site keys, and
 * `medseg federate` child processes whose stderr lines can be awaited, and an
 * in-process coordinator for the fixture.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { FastifyInstance } from 'fastify';
import { importMsdHippocampus } from '../data/import.ts';
import { Coordinator, type CoordinatorOptions } from '../federated/coordinator.ts';
import { coordinatorServer } from '../federated/coordinator-server.ts';
import { splitAcrossSites, type SiteFolder } from '../federated/site-split.ts';
import type { Plan } from '../plan/types.ts';
import { dataPath, repoRoot } from './data.ts';
import { writeFixtureModel } from './model-fixture.ts';

export interface FederationFixture {
  plan: Plan;
  planPath: string;
  keysPath: string;
  keys: Record<string, string>;
  sites: SiteFolder[];
}

/** Writes plan.json, keys.json and `sites` site folders of `cases` hippocampus cases under dir. */
export async function federationFixture(dir: string, o: { sites: number; cases: number; iterations?: number }): Promise<FederationFixture> {
  const plan = writeFixtureModel(join(dir, 'fixture-model'), 'mri3d', []);
  plan.iterationsPerEpoch = o.iterations ?? 2;
  const planPath = join(dir, 'plan.json');
  writeFileSync(planPath, JSON.stringify(plan));
  await importMsdHippocampus(dataPath('msd-hippocampus'), join(dir, 'dataset'), { limit: o.cases });
  const sites = await splitAcrossSites({ dataset: join(dir, 'dataset'), out: join(dir, 'sites'), sites: o.sites, strategy: 'by-case' });
  const keys = Object.fromEntries(sites.map((s, k) => [s.name, `test-key-of-${s.name}-${k}-0123456789`]));
  const keysPath = join(dir, 'keys.json');
  writeFileSync(keysPath, JSON.stringify(keys));
  return { plan, planPath, keysPath, keys, sites };
}

export interface MedsegProcess {
  child: ChildProcess;
  /** stderr so far. */
  readonly stderr: string;
  /** Resolves with the first stderr line matching `re` (rejects after timeoutMs or when the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

/** `medseg <args>` from the sources as a child process, with `env` added to the environment. */
export function spawnMedseg(args: string[], env: Record<string, string> = {}): MedsegProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/medseg/src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, MEDSEG_DEBUG: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  let done = false;
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = err.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      for (const w of waiters.splice(0)) w.reject(new Error(`medseg ${args[0]} ${args[1]} exited (${code ?? signal}) before ${w.re}:\n${err}`));
      resolve({ code, signal, stdout: out });
    }),
  );
  return {
    child,
    get stderr() {
      return err;
    },
    waitFor(re, timeoutMs = 30_000) {
      const m = err.match(re);
      if (m) return Promise.resolve(m);
      if (done) return Promise.reject(new Error(`medseg exited before ${re}:\n${err}`));
      return new Promise((resolve, reject) => {
        const w = { re, resolve, reject };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`no ${re} within ${timeoutMs} ms:\n${err}`));
          }
        }, timeoutMs).unref();
      });
    },
    exited,
  };
}

/** A loopback port free a moment ago (for starting a coordinator and its sites at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The float32 tensors of a safetensors file, as arrays. */
export function floatTensors(path: string): Map<string, Float32Array> {
  const { tensors } = torch.loadSafetensors(path);
  const out = new Map([...tensors].filter(([, t]) => t.dtype === 'float32').map(([n, t]) => [n, t.toFloat32Array()]));
  torch.dispose(tensors);
  return out;
}

/** A started coordinator for the fixture's plan and sites in `dir`, and its (not yet listening) server. */
export async function fixtureCoordinator(
  fx: FederationFixture,
  dir: string,
  o: Partial<CoordinatorOptions> & Pick<CoordinatorOptions, 'algorithm' | 'rounds'>,
): Promise<{ c: Coordinator; app: FastifyInstance }> {
  const c = new Coordinator({
    dir,
    plan: fx.plan,
    mu: 0,
    localEpochs: 1,
    sites: new Map(Object.entries(fx.keys)),
    roundTimeoutMs: 60_000,
    secureAggregation: false,
    log: () => {},
    ...o,
  });
  await c.start();
  return { c, app: coordinatorServer(c) };
}
