/**
 * Timings of this machine, measured once and remembered: the planner's
 * throughput model and step times are stored in one JSON file per user
 * ($MEDSEG_CACHE_DIR, else $XDG_CACHE_HOME/medseg, else ~/.cache/medseg), so
 * planning the same dataset with the same flags gives the same plan, also
 * when another process loads the CPUs during a later run. Timing the same
 * tens-of-milliseconds step in two processes differs by up to a quarter even
 * on an idle machine, which is enough to move a choice that sits near the
 * budget's limit; remembering the first careful measurement (FFTW's wisdom,
 * cuDNN's benchmark cache) is what makes the answer repeatable.
 *
 * The file is keyed by the machine (CPU model, logical CPUs, memory, OS and
 * architecture), the engine, medseg's version and TIMING_METHOD: any change
 * there starts from an empty store. Within it, each entry is keyed by what
 * was timed. A measurement taken while other processes kept the machine
 * busy throughout (no clean repetition) is used once and not remembered.
 * A missing, unreadable or corrupt file is an empty store (it is
 * rewritten on the next measurement); writes are atomic, and two processes
 * writing at once lose at most the other's newest entry, which is then
 * measured again.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { arch, cpus, homedir, platform, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic-write.ts';

/** Bumped when how a time is measured changes, so older measurements are not reused. */
export const TIMING_METHOD = 3;

export const MACHINE_TIMINGS_FILE = 'machine-timings.json';

/** The folder medseg keeps per-user caches in. */
export function medsegCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEDSEG_CACHE_DIR) return env.MEDSEG_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'medseg');
  return join(homedir(), '.cache', 'medseg');
}

/** What a timing depends on besides the timed work itself. */
export function machineKey(engine: string): string {
  const cpu = cpus();
  return JSON.stringify({
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    logicalCpus: cpu.length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${platform()}-${arch()}`,
    engine,
    method: TIMING_METHOD,
  });
}

export interface TimingEntry<T> {
  value: T;
  /** ISO time of the measurement. */
  measuredAt: string;
}

interface TimingsFile {
  machine: string;
  entries: Record<string, TimingEntry<unknown>>;
}

/** A measurement, and whether it was taken on an otherwise idle machine (only those are remembered). */
export interface Measurement<T> {
  value: T;
  clean: boolean;
}

export interface RememberedValue<T> {
  value: T;
  /** true: read from the store; false: measured now (and stored when clean). */
  remembered: boolean;
  measuredAt: string;
}

export class MachineTimings {
  readonly path: string;
  private readonly machine: string;
  private readonly recalibrate: boolean;

  /**
   * `engine` names the engine and its version (a different engine times
   * differently); `recalibrate` measures every requested timing anew and
   * replaces what was stored.
   */
  constructor(o: { engine: string; dir?: string; recalibrate?: boolean }) {
    this.path = join(o.dir ?? medsegCacheDir(), MACHINE_TIMINGS_FILE);
    this.machine = machineKey(o.engine);
    this.recalibrate = o.recalibrate ?? false;
  }

  private read(): TimingsFile {
    try {
      const f = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<TimingsFile>;
      if (f && f.machine === this.machine && f.entries && typeof f.entries === 'object' && !Array.isArray(f.entries)) {
        return { machine: this.machine, entries: f.entries };
      }
    } catch {
      // Absent or corrupt: an empty store, rewritten on the next measurement.
    }
    return { machine: this.machine, entries: {} };
  }

  /** The stored value for `key`, if any (ignores `recalibrate`). */
  get<T>(key: string): TimingEntry<T> | undefined {
    return this.read().entries[key] as TimingEntry<T> | undefined;
  }

  /** Stores `value` under `key`. A store that cannot be written is skipped: the measurement is still used, just not remembered. */
  set<T>(key: string, value: T): TimingEntry<T> {
    const entry = { value, measuredAt: new Date().toISOString() };
    try {
      const f = this.read();
      f.entries[key] = entry;
      mkdirSync(join(this.path, '..'), { recursive: true });
      writeFileAtomicSync(this.path, JSON.stringify(f, null, 1));
    } catch {
      // Read-only home or full disk: planning goes on without remembering.
    }
    return entry;
  }

  /** The stored value for `key`, or `measure()`'s, stored for next time when it was measured clean. */
  async remember<T>(key: string, measure: () => Promise<Measurement<T>> | Measurement<T>): Promise<RememberedValue<T>> {
    const stored = this.recalibrate ? undefined : this.get<T>(key);
    if (stored !== undefined) return { value: stored.value, remembered: true, measuredAt: stored.measuredAt };
    const m = await measure();
    if (!m.clean) return { value: m.value, remembered: false, measuredAt: new Date().toISOString() };
    const entry = this.set(key, m.value);
    return { value: entry.value, remembered: false, measuredAt: entry.measuredAt };
  }
}
