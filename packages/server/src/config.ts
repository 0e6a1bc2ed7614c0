/**
 * The service's settings: defaults, then a JSON config file, then
 * environment variables (MEDSEG_SERVE_*), then command-line flags, each
 * overriding the one before. Defaults are safe: loopback only, one data
 * folder, uploads and decoded volumes bounded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';

export interface ServiceConfig {
  /** Database, uploads and results live here. */
  dataDir: string;
  /** Model folders (one per model, named by its id). */
  modelsDir: string;
  host: string;
  port: number;
  /** Worker processes; 0 runs the API alone (jobs wait for a server with workers on the same data folder). */
  workers: number;
  maxUploadBytes: number;
  maxVoxelBytes: number;
  maxDecompressedBytes: number;
  /** A claimed job is taken back when its worker sends no heartbeat for this long. */
  leaseMs: number;
  heartbeatMs: number;
  /** How often an idle worker looks for jobs without being woken. */
  pollMs: number;
  /** A job whose worker died this many times fails. */
  maxAttempts: number;
  /** Requests per key per window. */
  rateLimit: { max: number; windowMs: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
}

export function defaultConfig(dataDir = 'medseg-data'): ServiceConfig {
  const data = resolve(dataDir);
  return {
    dataDir: data,
    modelsDir: resolve(data, 'models'),
    host: '127.0.0.1',
    port: 8420,
    workers: Math.max(1, Math.floor(cpus().length / 2)),
    maxUploadBytes: 512 * 1024 ** 2,
    maxVoxelBytes: 1024 ** 3,
    maxDecompressedBytes: 2 * 1024 ** 3,
    leaseMs: 60_000,
    heartbeatMs: 10_000,
    pollMs: 1_000,
    maxAttempts: 3,
    rateLimit: { max: 600, windowMs: 60_000 },
    logLevel: 'info',
  };
}

/** A setting that cannot be used; says which and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const NUMERIC = ['port', 'workers', 'maxUploadBytes', 'maxVoxelBytes', 'maxDecompressedBytes', 'leaseMs', 'heartbeatMs', 'pollMs', 'maxAttempts'] as const;
const ENV: Record<string, keyof ServiceConfig> = {
  MEDSEG_SERVE_DATA: 'dataDir',
  MEDSEG_SERVE_MODELS: 'modelsDir',
  MEDSEG_SERVE_HOST: 'host',
  MEDSEG_SERVE_PORT: 'port',
  MEDSEG_SERVE_WORKERS: 'workers',
  MEDSEG_SERVE_MAX_UPLOAD_BYTES: 'maxUploadBytes',
  MEDSEG_SERVE_LOG_LEVEL: 'logLevel',
};

/** Checks a complete configuration; throws ConfigError naming the first bad setting. */
export function checkConfig(c: ServiceConfig): ServiceConfig {
  for (const k of NUMERIC) {
    const v = c[k];
    const min = k === 'port' || k === 'workers' ? 0 : 1;
    if (!Number.isInteger(v) || v < min || (k === 'port' && v > 65535))
      throw new ConfigError(`${k} must be an integer of at least ${min} (got ${JSON.stringify(v)})`);
  }
  if (c.heartbeatMs * 2 > c.leaseMs) throw new ConfigError(`heartbeatMs (${c.heartbeatMs}) must be at most half of leaseMs (${c.leaseMs})`);
  if (!Number.isInteger(c.rateLimit.max) || c.rateLimit.max < 1 || !Number.isInteger(c.rateLimit.windowMs) || c.rateLimit.windowMs < 1) {
    throw new ConfigError('rateLimit needs positive integers max and windowMs');
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'silent'].includes(c.logLevel))
    throw new ConfigError(`logLevel ${JSON.stringify(c.logLevel)} is not a level`);
  return c;
}

/** Merges defaults, the config file (when given or present as <data>/config.json), the environment and the flags. */
export function loadConfig(flags: Partial<ServiceConfig> & { config?: string }, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const fromEnv: Partial<Record<keyof ServiceConfig, unknown>> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') fromEnv[key] = (NUMERIC as readonly string[]).includes(key) ? Number(v) : v;
  }
  const dataDir = flags.dataDir ?? (fromEnv.dataDir as string | undefined) ?? 'medseg-data';
  const base = defaultConfig(dataDir);
  const file = flags.config ?? resolve(base.dataDir, 'config.json');
  let fromFile: Partial<ServiceConfig> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Partial<ServiceConfig>;
    } catch (e) {
      throw new ConfigError(`cannot read the config file ${file}: ${(e as Error).message}`);
    }
    if (!fromFile || typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError(`the config file ${file} must hold a JSON object`);
    const unknown = Object.keys(fromFile).filter((k) => !(k in base));
    if (unknown.length) throw new ConfigError(`unknown setting(s) in ${file}: ${unknown.join(', ')}`);
  } else if (flags.config) {
    throw new ConfigError(`the config file ${flags.config} does not exist`);
  }
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<ServiceConfig>;
  const { config: _c, ...rest } = flags;
  const merged = { ...base, ...defined(fromFile), ...defined(fromEnv), ...defined(rest), dataDir: base.dataDir };
  merged.modelsDir = resolve(merged.modelsDir);
  return checkConfig(merged);
}
