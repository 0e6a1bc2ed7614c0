/**
 * A throw-away PostgreSQL cluster on loopback for tests and benches: initdb
 * into a fresh temporary folder, the server started with pg_ctl on a free
 * port (TCP on 127.0.0.1 only, its socket in the same folder), a database
 * made for the caller, and everything stopped and removed by stop(). The
 * server programs come from Debian's postgresql package
 * (/usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root, so
 * as root the cluster belongs to the postgres user (runuser).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface TestPostgres {
  /** postgres://user@127.0.0.1:port/db of the database made for the caller. */
  url: string;
  port: number;
  /** Stops the server (immediate shutdown) and removes its folder. */
  stop(): void;
}

/** The newest installed server's bin folder; throws when PostgreSQL is not installed. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) throw new Error('PostgreSQL server programs not found in /usr/lib/postgresql (install the Debian package postgresql)');
  return join(base, versions[0]!, 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster. `durable: false` (tests) turns fsync off: a killed
 * process loses nothing either way (the kernel keeps what was written), only
 * a power loss would.
 */
export async function startPostgres(o: { durable?: boolean; database?: string } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const root = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'medseg-pg-'));
  chmodSync(dir, 0o700);
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (program: string, args: string[]) =>
    execFileSync(root ? 'runuser' : join(bin, program), root ? ['-u', 'postgres', '--', join(bin, program), ...args] : args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  const data = join(dir, 'data');
  const user = 'medseg';
  const database = o.database ?? 'medseg';
  let port = 0;
  let started = false;
  const stop = () => {
    if (started) {
      try {
        run('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30']);
      } catch {
        // already stopped
      }
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run('initdb', ['-D', data, '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale', 'C', '--no-sync']);
    const settings = [`-p`, ``, `-k`, dir, `-c`, `listen_addresses=127.0.0.1`, `-c`, `max_connections=200`];
    if (o.durable === false) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
    for (let tries = 0; ; tries++) {
      port = await freePort();
      settings[1] = String(port);
      try {
        run('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'log'), '-o', settings.join(' ')]);
        started = true;
        break;
      } catch (e) {
        if (tries >= 2) throw e;
      }
    }
    run('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', user, database]);
  } catch (e) {
    const out = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    stop();
    throw new Error(`could not start a test PostgreSQL: ${(e as Error).message}\n${out}`);
  }
  return { url: `postgres://${user}@127.0.0.1:${port}/${database}`, port, stop };
}
