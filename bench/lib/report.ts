/**
 * What every bench result carries besides its numbers: the command that made
 * it, the date, and the machine with its load, because on a shared 2-core
 * machine a time means little without the load it was measured under.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  /** 1, 5 and 15 minute load averages when the info was taken. */
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/**
 * The BLAS this process actually loaded (libtorch pulls it in with the addon):
 * read from /proc/self/maps, so LD_LIBRARY_PATH experiments show up too.
 */
export function blasLibrary(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set(
      maps
        .split('\n')
        .map((l) => l.split(/\s+/)[5] ?? '')
        .filter((f) => /blas/i.test(f)),
    );
    return [...libs].join(', ') || 'none loaded';
  } catch {
    return 'unknown';
  }
}

/** `--tag NAME` in a bench's args: results go to <bench>-<NAME>.json (experiments beside the main result). */
export function takeTag(args: string[]): { tag: string | null; rest: string[] } {
  const i = args.indexOf('--tag');
  if (i < 0) return { tag: null, rest: args };
  const tag = args[i + 1];
  if (!tag || !/^[\w.-]+$/.test(tag)) throw new Error('--tag needs a name of letters, digits, . _ -');
  return { tag, rest: [...args.slice(0, i), ...args.slice(i + 2)] };
}

/** The command line as the user typed it: `npm run bench -- <name> <args>`. */
export function benchCommand(name: string, args: readonly string[]): string {
  return ['npm run bench --', name, ...args].join(' ');
}

/** Environment that changes results, shown in the command when it differs from the engine's default. */
const ENV_SHOWN: Record<string, string | undefined> = {
  LD_LIBRARY_PATH: undefined,
  OMP_WAIT_POLICY: 'PASSIVE',
  GOMP_SPINCOUNT: '10000',
  OPENBLAS_NUM_THREADS: '1',
  MEDSEG_THREADS: undefined,
  MEDSEG_MALLOC_TUNING: undefined,
};

/** Writes bench/results/<name>.json with command, date and machine first. */
export function writeResult(name: string, args: readonly string[], body: Record<string, unknown>, loadBefore: number[], tag: string | null = null): string {
  const out = {
    command: `${Object.keys(ENV_SHOWN)
      .filter((k) => process.env[k] !== undefined && process.env[k] !== ENV_SHOWN[k])
      .map((k) => `${k}=${process.env[k]} `)
      .join('')}${benchCommand(name, args)}`,
    date: new Date().toISOString(),
    machine: { ...machineInfo(), loadavgBefore: loadBefore },
    ...body,
  };
  const path = join(benchDir, 'results', `${tag ? `${name}-${tag}` : name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  return path;
}

/**
 * Percent of all CPUs busy over the next `ms` (from /proc/stat): the load
 * average lags by a minute, this says whether the machine is busy right now.
 */
export async function cpuBusyPercent(ms = 1000): Promise<number | null> {
  const read = (): number[] | null => {
    try {
      return readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    } catch {
      return null;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b) return null;
  const d = b.map((v, i) => v - a[i]!);
  const total = d.reduce((x, y) => x + y, 0);
  const idle = d[3]! + d[4]!;
  return total > 0 ? Math.round((100 * (total - idle)) / total) : null;
}
