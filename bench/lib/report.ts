/**
 * What every bench result carries besides its numbers: the command that made
 * it, the date, and the machine with its load, because on a shared 2-core
 * machine a time means little without the load it was measured under.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
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

/** The shared object of BLAS libtorch links against (which OpenBLAS build is chosen). */
export function blasLibrary(): string {
  try {
    return execFileSync('readlink', ['-f', '/usr/lib/x86_64-linux-gnu/libblas.so.3'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The command line as the user typed it: `npm run bench -- <name> <args>`. */
export function benchCommand(name: string, args: readonly string[]): string {
  return ['npm run bench --', name, ...args].join(' ');
}

/** Writes bench/results/<name>.json with command, date and machine first. */
export function writeResult(name: string, args: readonly string[], body: Record<string, unknown>, loadBefore: number[]): string {
  const out = {
    command: benchCommand(name, args),
    date: new Date().toISOString(),
    machine: { ...machineInfo(), loadavgBefore: loadBefore },
    ...body,
  };
  const path = join(benchDir, 'results', `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  return path;
}
