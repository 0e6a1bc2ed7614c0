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
  /**
   * The service's SQLite database (keys, audit log, monitoring, FHIR outbox;
   * the job queue too without databaseUrl) and its lock: on a disk of this
   * machine, never on a network share. Uploads and results live here too
   * unless sharedDir is set.
   */
  dataDir: string;
  /**
   * uploads/, results/ and the de-identification secret, when they must be
   * seen by several machines: a folder every host mounts (e.g. over NFS),
   * beside the job queue on PostgreSQL. Null: they live in the data folder.
   */
  sharedDir: string | null;
  /**
   * postgres://user@host:port/db: the job queue on PostgreSQL, shared by the
   * server and worker hosts (`medseg-serve worker`) on several machines, each
   * with its own data folder and the same sharedDir. Unset: the queue is in
   * the data folder's SQLite file.
   */
  databaseUrl?: string;
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
  /**
   * The PACS jobs may read series from and store their DICOM SEG to, over
   * DICOMweb. A submission names one of these (or gets the first); no other
   * server is ever contacted.
   */
  dicomweb: DicomwebServer[];
  /** Each DICOMweb request, answer included, must be over in this time. */
  dicomwebTimeoutMs: number;
  /** Series that arrive on a PACS and match a rule are segmented without being submitted (see dicomweb/autoroute.ts). */
  autoroute: AutorouteRule[];
  /** How often each rule's PACS is searched for new series. */
  autoroutePollMs: number;
  /** Drift monitoring (GET /models/:id/monitoring; see monitoring/drift.ts). */
  monitoring: MonitoringSettings;
  /**
   * Models whose outgoing DICOM (the SEG stored to the PACS or downloaded) is
   * always de-identified ('*': every model); a submission may ask for it with
   * "deidentify" as well. UIDs derive from <data>/deid-secret (deid/secret.ts).
   */
  deidentifyModels: string[];
  /** TLS: PEM files of the private key and its certificate (chain); the API is then served over HTTPS only. */
  tlsKey: string | null;
  tlsCert: string | null;
  /**
   * Plain HTTP on an address other than loopback is refused (keys would
   * cross the network in clear) unless this is set, e.g. behind a TLS proxy.
   */
  plainHttpOffLoopback: boolean;
  /** The FHIR R4 server each result's Observations and DiagnosticReport are POSTed to (a transaction Bundle); null: none. */
  fhir: FhirSettings | null;
}

export interface FhirSettings {
  /** Base URL of the FHIR server. */
  url: string;
  /** Extra headers sent to it (e.g. Authorization). */
  headers?: Record<string, string>;
  /** The identifier system of the hospital's Patient IDs (default urn:medseg:dicom-patient-id). */
  patientIdSystem?: string;
  /** Wait before the second attempt at a Bundle, doubling per attempt (default 5000 ms). */
  retryMs?: number;
  /** Attempts before a Bundle is given up (default 8). */
  maxAttempts?: number;
}

/** Where uploads/, results/ and the de-identification secret live. */
export function filesDir(c: Pick<ServiceConfig, 'dataDir' | 'sharedDir'>): string {
  return c.sharedDir ?? c.dataDir;
}

/** Loopback addresses: plain HTTP on them never leaves the machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface MonitoringSettings {
  /** Cases in the sliding window (default 50). */
  window: number;
  /** Flag rate expected of a model on its own kind of data when its validation gave none (default 0.1). */
  expectedFlagRate: number;
  /** The window drifts when its flag count has a binomial p below this (default 0.01). */
  alpha: number;
}

export interface AutorouteRule {
  /** The model that segments the matching series. */
  model: string;
  /** The PACS to watch: one of the dicomweb URLs (default: the first). */
  url?: string;
  /** Only series of this modality (e.g. CT); series without images of their own (SEG, SR, ...) are never taken. */
  modality?: string;
  /** Only series whose description matches this regular expression (case-insensitive). */
  seriesDescription?: string;
}

export interface DicomwebServer {
  /** Base URL of the DICOMweb service (the studies resource is below it), e.g. http://pacs:8042/dicom-web */
  url: string;
  /** Extra headers sent to this server only (e.g. Authorization). */
  headers?: Record<string, string>;
}

export function defaultConfig(dataDir = 'medseg-data'): ServiceConfig {
  const data = resolve(dataDir);
  return {
    dataDir: data,
    sharedDir: null,
    databaseUrl: undefined,
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
    dicomweb: [],
    dicomwebTimeoutMs: 60_000,
    autoroute: [],
    autoroutePollMs: 10_000,
    monitoring: { window: 50, expectedFlagRate: 0.1, alpha: 0.01 },
    deidentifyModels: [],
    tlsKey: null,
    tlsCert: null,
    plainHttpOffLoopback: false,
    fhir: null,
  };
}

/** A setting that cannot be used; says which and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const NUMERIC = [
  'port',
  'workers',
  'maxUploadBytes',
  'maxVoxelBytes',
  'maxDecompressedBytes',
  'leaseMs',
  'heartbeatMs',
  'pollMs',
  'maxAttempts',
  'dicomwebTimeoutMs',
  'autoroutePollMs',
] as const;
const ENV: Record<string, keyof ServiceConfig> = {
  MEDSEG_SERVE_DATA: 'dataDir',
  MEDSEG_SERVE_SHARED: 'sharedDir',
  MEDSEG_SERVE_MODELS: 'modelsDir',
  MEDSEG_SERVE_HOST: 'host',
  MEDSEG_SERVE_PORT: 'port',
  MEDSEG_SERVE_WORKERS: 'workers',
  MEDSEG_SERVE_MAX_UPLOAD_BYTES: 'maxUploadBytes',
  MEDSEG_SERVE_LOG_LEVEL: 'logLevel',
  MEDSEG_SERVE_TLS_KEY: 'tlsKey',
  MEDSEG_SERVE_TLS_CERT: 'tlsCert',
  MEDSEG_DATABASE_URL: 'databaseUrl',
};

/** Checks the DICOMweb servers: http(s) URLs without credentials, query or fragment, each once; header values strings. */
function checkDicomweb(servers: unknown): void {
  if (!Array.isArray(servers)) throw new ConfigError('dicomweb must be a list of { url, headers? }');
  const seen = new Set<string>();
  for (const s of servers as unknown[]) {
    const o = s as Partial<DicomwebServer> | null;
    if (!o || typeof o !== 'object' || typeof o.url !== 'string') throw new ConfigError('each dicomweb entry needs a "url"');
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new ConfigError(`dicomweb url ${JSON.stringify(o.url)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`dicomweb url ${o.url} must be http or https`);
    if (u.username || u.password) throw new ConfigError(`dicomweb url ${u.host}${u.pathname}: put credentials in "headers" (Authorization), not in the URL`);
    if (u.search || u.hash) throw new ConfigError(`dicomweb url ${o.url} must have no query or fragment`);
    const key = u.href.replace(/\/+$/, '');
    if (seen.has(key)) throw new ConfigError(`dicomweb url ${o.url} is listed twice`);
    seen.add(key);
    const extra = Object.keys(o).filter((k) => k !== 'url' && k !== 'headers');
    if (extra.length) throw new ConfigError(`unknown dicomweb setting(s): ${extra.join(', ')}`);
    if (o.headers !== undefined && (typeof o.headers !== 'object' || Object.values(o.headers).some((v) => typeof v !== 'string'))) {
      throw new ConfigError(`dicomweb headers of ${o.url} must map names to strings`);
    }
  }
}

/** Checks the autorouting rules: a model id, and a URL among the configured PACS. */
function checkAutoroute(rules: unknown, servers: DicomwebServer[]): void {
  if (!Array.isArray(rules)) throw new ConfigError('autoroute must be a list of { model, url?, modality?, seriesDescription? }');
  const urls = servers.map((s) => new URL(s.url).href.replace(/\/+$/, ''));
  for (const r of rules as unknown[]) {
    const o = r as Partial<AutorouteRule> | null;
    if (!o || typeof o !== 'object' || typeof o.model !== 'string' || o.model === '') throw new ConfigError('each autoroute rule needs a "model"');
    const extra = Object.keys(o).filter((k) => !['model', 'url', 'modality', 'seriesDescription'].includes(k));
    if (extra.length) throw new ConfigError(`unknown autoroute setting(s): ${extra.join(', ')}`);
    if (urls.length === 0) throw new ConfigError('autoroute rules need a PACS: set "dicomweb"');
    if (o.url !== undefined) {
      let u: string;
      try {
        u = new URL(o.url).href.replace(/\/+$/, '');
      } catch {
        throw new ConfigError(`autoroute url ${JSON.stringify(o.url)} is not a URL`);
      }
      if (!urls.includes(u)) throw new ConfigError(`autoroute url ${o.url} is not one of the dicomweb URLs`);
    }
    if (o.modality !== undefined && (typeof o.modality !== 'string' || !/^[A-Z0-9 _]{1,16}$/.test(o.modality))) {
      throw new ConfigError(`autoroute modality ${JSON.stringify(o.modality)} is not a DICOM modality code`);
    }
    if (o.seriesDescription !== undefined) {
      try {
        new RegExp(o.seriesDescription, 'i');
      } catch {
        throw new ConfigError(`autoroute seriesDescription ${JSON.stringify(o.seriesDescription)} is not a regular expression`);
      }
    }
  }
}

/** Checks the monitoring settings: a window of 1..10000 cases, a rate and an alpha in (0, 1). */
function checkMonitoring(m: unknown): void {
  const o = m as Partial<MonitoringSettings> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ConfigError('monitoring must be an object { window, expectedFlagRate, alpha }');
  const extra = Object.keys(o).filter((k) => !['window', 'expectedFlagRate', 'alpha'].includes(k));
  if (extra.length) throw new ConfigError(`unknown monitoring setting(s): ${extra.join(', ')}`);
  if (!Number.isInteger(o.window) || o.window! < 1 || o.window! > 10_000) throw new ConfigError('monitoring.window must be an integer from 1 to 10000');
  for (const k of ['expectedFlagRate', 'alpha'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !(v > 0 && v < 1)) throw new ConfigError(`monitoring.${k} must be a number between 0 and 1`);
  }
}

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
  if (c.databaseUrl !== undefined && !/^postgres(ql)?:\/\/[^\s]+$/.test(c.databaseUrl)) {
    throw new ConfigError('databaseUrl must be a postgres:// URL');
  }
  checkDicomweb(c.dicomweb);
  checkAutoroute(c.autoroute, c.dicomweb);
  checkMonitoring(c.monitoring);
  if (!Array.isArray(c.deidentifyModels) || !c.deidentifyModels.every((m) => typeof m === 'string' && m !== '')) {
    throw new ConfigError('deidentifyModels must be a list of model ids ("*" for every model)');
  }
  for (const k of ['tlsKey', 'tlsCert'] as const) {
    const v = c[k];
    if (v !== null && (typeof v !== 'string' || v === '')) throw new ConfigError(`${k} must be the path of a PEM file`);
    if (v !== null && !existsSync(v)) throw new ConfigError(`${k} ${v} does not exist`);
  }
  if (c.fhir !== null) {
    const f = c.fhir as { url?: unknown; headers?: unknown; patientIdSystem?: unknown; retryMs?: unknown; maxAttempts?: unknown };
    let u: URL | undefined;
    try {
      u = typeof f?.url === 'string' ? new URL(f.url) : undefined;
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) {
      throw new ConfigError('fhir.url must be the http(s) base URL of a FHIR server, without credentials (put them in fhir.headers)');
    }
    const extra = Object.keys(f).filter((k) => !['url', 'headers', 'patientIdSystem', 'retryMs', 'maxAttempts'].includes(k));
    if (extra.length) throw new ConfigError(`unknown fhir setting(s): ${extra.join(', ')}`);
    if (f.headers !== undefined && (typeof f.headers !== 'object' || f.headers === null || Object.values(f.headers).some((v) => typeof v !== 'string'))) {
      throw new ConfigError('fhir.headers must map names to strings');
    }
    if (f.patientIdSystem !== undefined && (typeof f.patientIdSystem !== 'string' || !/^[a-z][a-z0-9+.-]*:\S+$/i.test(f.patientIdSystem))) {
      throw new ConfigError("fhir.patientIdSystem must be a URI (the identifier system of the Patient IDs, e.g. the hospital's MRN system)");
    }
    for (const k of ['retryMs', 'maxAttempts'] as const) {
      const v = f[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw new ConfigError(`fhir.${k} must be a whole number of at least 1`);
    }
  }
  if (c.sharedDir !== null && (typeof c.sharedDir !== 'string' || c.sharedDir === '')) {
    throw new ConfigError('sharedDir must be the path of a folder every host mounts (or null: uploads and results in the data folder)');
  }
  if ((c.tlsKey === null) !== (c.tlsCert === null)) throw new ConfigError('TLS needs both tlsKey and tlsCert (PEM files)');
  if (c.tlsKey === null && !isLoopback(c.host) && c.plainHttpOffLoopback !== true) {
    throw new ConfigError(
      `listening on ${c.host} without TLS would send API keys in clear: give tlsKey and tlsCert, or set plainHttpOffLoopback behind a TLS proxy`,
    );
  }
  return c;
}

/** Merges defaults, the config file (when given or present as <data>/config.json), the environment and the flags. */
export function loadConfig(flags: Partial<ServiceConfig> & { config?: string }, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const fromEnv: Partial<Record<keyof ServiceConfig, unknown>> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') fromEnv[key] = (NUMERIC as readonly string[]).includes(key) ? Number(v) : v;
  }
  // MEDSEG_SERVE_DICOMWEB_URL names one PACS (replacing the config file's list).
  const pacsUrl = env.MEDSEG_SERVE_DICOMWEB_URL;
  if (pacsUrl) fromEnv.dicomweb = [{ url: pacsUrl }];
  if (env.MEDSEG_SERVE_FHIR_URL) fromEnv.fhir = { url: env.MEDSEG_SERVE_FHIR_URL };
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
  if (typeof merged.sharedDir === 'string' && merged.sharedDir !== '') merged.sharedDir = resolve(merged.sharedDir);
  if (merged.tlsKey) merged.tlsKey = resolve(merged.tlsKey);
  if (merged.tlsCert) merged.tlsCert = resolve(merged.tlsCert);
  // A config file may give some monitoring settings; the others keep their defaults.
  const m = fromFile.monitoring as unknown;
  if (m && typeof m === 'object' && !Array.isArray(m)) merged.monitoring = { ...base.monitoring, ...(m as Partial<MonitoringSettings>) };
  return checkConfig(merged);
}
