/**
 * medseg-serve run from the sources as a separate process in its own process
 * group, so that a test or bench can SIGKILL the server and its workers at
 * once, and only them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from '@medseg/medseg/testing/data';
import { waitFor } from './fixture.ts';

export interface SpawnedServer {
  child: ChildProcess;
  url: string;
  adminKey: string | null;
  recovered: { requeued: number; removedFiles: number };
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL to the whole group, then waits until no process of it is left. */
export async function killGroup(pgid: number): Promise<void> {
  if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
  await waitFor(`process group ${pgid} to end`, () => (groupAlive(pgid) ? undefined : true), 10_000, 50);
}

/** Starts the server on data/models; resolves with its start-up line. The pgid (= child pid) is pushed to `groups` for clean-up. */
export async function spawnServer(data: string, models: string, groups: number[]): Promise<SpawnedServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/cli.ts', '--data', data, '--models', models, '--json'], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  groups.push(child.pid!);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${err}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before starting:\n${err}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (out.includes('\n')) return; // started; later output is only drained
      out += d.toString();
      const line = out.split('\n')[0]!;
      if (out.includes('\n') && line.startsWith('{"url"')) {
        clearTimeout(t);
        resolve({ child, ...(JSON.parse(line) as Omit<SpawnedServer, 'child'>) });
      }
    });
  });
}
