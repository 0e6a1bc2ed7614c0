/**
 * Timing on a shared machine: a repetition during which other processes kept
 * the CPUs busy is re-timed, and the result is the median of the clean
 * repetitions. The median, not the minimum: a time-budgeted trainer runs at
 * its typical step time, and the fastest repetition (no thread wake-up, warm
 * caches) under-predicts it, so a plan sized by the minimum trains fewer
 * iterations than it expects.
 *
 * Load is read from /proc/stat: the CPU time all processes spent during the
 * repetition minus this process's own (process.cpuUsage), as a share of the
 * CPUs' capacity over the repetition's wall time. Where /proc/stat is absent
 * no repetition counts as loaded. /proc/stat counts in 10 ms ticks, so a
 * repetition runs the step as many times as it takes to last at least
 * MIN_REPETITION_SECONDS; a single millisecond-long step could not tell a
 * loaded machine from an idle one.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { median } from './quantile.ts';

/** Another process's CPU use above this share of the machine marks a repetition as loaded. */
export const LOAD_THRESHOLD = 0.1;

/** The shortest repetition: ten /proc/stat ticks, so the load share is resolved to about 10 %. */
export const MIN_REPETITION_SECONDS = 0.1;

/**
 * Clean timing wanted in total: a step of tens of milliseconds varies by a
 * quarter between repetitions on an idle machine (thread wake-ups), and the
 * median of ten repetitions is stable where that of three is not.
 */
export const MIN_CLEAN_SECONDS = 1;

/** Seconds of CPU time all processes have used since boot (user, nice, system, irq, softirq, steal), or null off Linux. */
function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
    return busy / 100; // USER_HZ
  } catch {
    return null;
  }
}

export interface LoadProbe {
  /** Share of the machine's CPU capacity other processes used since the probe started (0 when unknown). */
  othersShare(): number;
  wallSeconds(): number;
}

export function startLoadProbe(): LoadProbe {
  const n = cpus().length;
  const busy0 = machineBusySeconds();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  return {
    wallSeconds: () => (performance.now() - t0) / 1000,
    othersShare() {
      const wall = (performance.now() - t0) / 1000;
      const busy1 = machineBusySeconds();
      if (busy0 === null || busy1 === null || wall <= 0) return 0;
      const own = process.cpuUsage(own0);
      const ownSeconds = (own.user + own.system) / 1e6;
      return Math.max(0, busy1 - busy0 - ownSeconds) / (wall * n);
    },
  };
}

export interface RobustTiming {
  /** Seconds per step: the median of the clean repetitions (the fastest of all when none was clean in time). */
  seconds: number;
  /** Seconds per step of the fastest clean repetition (of all when none was clean). */
  fastest: number;
  /** Seconds per step of every timed repetition, clean or not. */
  samples: number[];
  /** Steps run per repetition (enough to last MIN_REPETITION_SECONDS). */
  stepsPerRepetition: number;
  /** Repetitions discarded because the machine was loaded. */
  loaded: number;
  /** Whether `seconds` comes from a clean repetition. */
  clean: boolean;
}

export interface RobustTimingOptions {
  /** Clean repetitions wanted (default 3). */
  reps?: number;
  /** Untimed repetitions first (default 1). */
  warmup?: number;
  /** Give up waiting for clean repetitions after this many seconds (default 8): a burst of load passes, a machine loaded for good is timed as it is. */
  maxSeconds?: number;
  /** Pause after a loaded repetition, letting a short burst of load pass (default 0.25 s). */
  pauseSeconds?: number;
  threshold?: number;
  /** The shortest repetition in seconds (default MIN_REPETITION_SECONDS). */
  minRepetitionSeconds?: number;
  /** Keep timing clean repetitions until they add up to this many seconds (default MIN_CLEAN_SECONDS), so a short step's median is taken over many. */
  minCleanSeconds?: number;
}

/**
 * Times `step` until `reps` repetitions ran on an otherwise idle machine (or
 * `maxSeconds` passed) and returns the median of the clean ones.
 */
export async function timeRobustly(step: () => void, o: RobustTimingOptions = {}): Promise<RobustTiming> {
  const reps = o.reps ?? 3;
  const threshold = o.threshold ?? LOAD_THRESHOLD;
  const maxSeconds = o.maxSeconds ?? 8;
  const pause = o.pauseSeconds ?? 0.25;
  for (let i = 0; i < (o.warmup ?? 1); i++) step();
  const once = performance.now();
  step();
  const stepSeconds = Math.max((performance.now() - once) / 1000, 1e-6);
  const stepsPerRepetition = Math.max(1, Math.ceil((o.minRepetitionSeconds ?? MIN_REPETITION_SECONDS) / stepSeconds));
  const samples: number[] = [];
  const clean: number[] = [];
  let loaded = 0;
  const t0 = performance.now();
  const minClean = o.minCleanSeconds ?? MIN_CLEAN_SECONDS;
  let cleanSeconds = 0;
  while (clean.length < reps || cleanSeconds < minClean) {
    const probe = startLoadProbe();
    for (let k = 0; k < stepsPerRepetition; k++) step();
    const s = probe.wallSeconds() / stepsPerRepetition;
    samples.push(s);
    if (probe.othersShare() <= threshold) {
      clean.push(s);
      cleanSeconds += s * stepsPerRepetition;
    } else {
      loaded++;
      if ((performance.now() - t0) / 1000 > maxSeconds) break;
      await new Promise((r) => setTimeout(r, pause * 1000));
    }
  }
  // With no clean repetition every sample carries load, and the fastest is the least loaded.
  const fastest = Math.min(...(clean.length > 0 ? clean : samples));
  const seconds = clean.length > 0 ? median(clean) : fastest;
  return { seconds, fastest, samples, stepsPerRepetition, loaded, clean: clean.length > 0 };
}
