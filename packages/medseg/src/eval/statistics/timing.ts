/** Inference-time summaries (median, p95) together with the machine they were measured on. */
import { cpus, platform, arch, totalmem } from 'node:os';
import { quantileSorted } from '../../util/quantile.ts';
import { mean } from './summary.ts';

export interface Hardware {
  cpuModel: string;
  cores: number;
  platform: string;
  arch: string;
  totalMemoryGiB: number;
  node: string;
}

export function hardwareInfo(): Hardware {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    platform: platform(),
    arch: arch(),
    totalMemoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
  };
}

export interface TimeSummary {
  n: number;
  /** Non-finite or negative timings dropped. */
  nInvalid: number;
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Intra-op threads used during timing, null when the caller did not say. */
  threads: number | null;
  hardware: Hardware;
}

/** Median and 95th percentile (numpy linear) of per-case inference times, with the machine they ran on. */
export function summarizeInferenceTimes(
  timesMs: readonly number[] | Record<string, number>,
  opts: { threads?: number; hardware?: Hardware } = {},
): TimeSummary {
  const all = Array.isArray(timesMs) ? (timesMs as number[]) : Object.values(timesMs);
  const valid = all.filter((t) => Number.isFinite(t) && t >= 0).sort((a, b) => a - b);
  return {
    n: valid.length,
    nInvalid: all.length - valid.length,
    medianMs: quantileSorted(valid, 0.5),
    p95Ms: quantileSorted(valid, 0.95),
    meanMs: mean(valid),
    minMs: valid.length ? valid[0]! : Number.NaN,
    maxMs: valid.length ? valid[valid.length - 1]! : Number.NaN,
    threads: opts.threads ?? null,
    hardware: opts.hardware ?? hardwareInfo(),
  };
}
