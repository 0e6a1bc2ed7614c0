/**
 * The HTTP API: routes, their schemas, API-key checks, per-key rate limits,
 * the OpenAPI description, and one error shape for every failure. Every bad
 * request gets a 4xx with a message that says what to do; a failure of the
 * server itself is logged and answered with a 500 that shows no internals.
 * No CORS headers are sent: browsers on other origins are refused by default.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { Job } from '../store/jobs.ts';
import type { JobQueue } from '../store/queue.ts';
import { allows, type ApiKey, type KeyStore, type Scope } from '../store/keys.ts';
import { ModelFolderError, type ModelCatalog } from '../models/catalog.ts';
import { receiveCase, UploadError } from '../upload/receive.ts';
import { FORMAT_ENDING } from '../upload/sniff.ts';
import { RESULT_FILE, type JobInputFormat } from '../job-formats.ts';
import type { DicomwebServer } from '../config.ts';
import { checkDicomwebRef, type DicomwebRef } from '../dicomweb/reference.ts';
import * as S from './schemas.ts';
import { resolveStaticFile, STATIC_HEADERS } from './static-files.ts';
import type { AuditLog } from '../audit/log.ts';
import { jobEntry } from '../audit/job-entry.ts';
import { changeJob } from '../audit/queue-change.ts';
import type { NewJob } from '../store/jobs.ts';
import type { ModelInfo } from '../models/catalog.ts';
import type { MonitoringStore } from '../monitoring/store.ts';
import type { MonitoringSettings } from '../config.ts';
import { registerMonitoringRoute } from './monitoring-route.ts';
import { registerCorrectionRoutes } from './corrections-route.ts';
import type { CorrectionStore } from '../corrections/store.ts';
import { deidentifyWanted, withDeidentify, type JobDeidentify } from '../deid/job-deid.ts';
import type { FhirOutbox } from '../fhir/outbox.ts';
import { JobExtrasError, jobExtras, jobMapFile, outputExtras, parseJobExtras, withExtras, type JobMapName } from '../job-extras.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKey | null;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one are open (health, OpenAPI). */
    scope?: Scope;
  }
}

export interface AppOptions {
  jobs: JobQueue;
  keys: KeyStore;
  catalog: ModelCatalog;
  /** uploads/ and results/ are below it (the data folder, or the shared folder of a multi-host deployment); paths in the database are relative to it. */
  filesDir: string;
  maxUploadBytes: number;
  maxVoxelBytes: number;
  maxDecompressedBytes: number;
  rateLimit: { max: number; windowMs: number };
  /** The PACS a submission may name as the place of its series (none: DICOMweb submissions are refused). */
  dicomweb?: DicomwebServer[];
  /** How long a PACS request may take, and the most it may send (a dicomweb job's series is fetched again to correct it). */
  dicomwebLimits?: { timeoutMs: number; maxBytes: number };
  /**
   * Failed key checks allowed per client address and window (default 20 a
   * minute); past it the address gets 429 before any key is checked, so
   * guessing costs the server no slow hashing.
   */
  authFailureLimit?: { max: number; windowMs: number };
  /** The audit log: submissions, cancellations, result reads and key changes are recorded in it. */
  audit?: AuditLog;
  /** The monitoring records and settings behind GET /models/:id/monitoring (the route is absent without them). */
  monitoring?: { store: MonitoringStore; settings: MonitoringSettings };
  /** De-identification of outgoing DICOM: the jobs marked for it, and the models that always are. */
  deidentify?: { jobs: JobDeidentify; models: string[] };
  /** Corrections saved for done jobs, behind /jobs/:id/corrections (the routes are absent without it). */
  corrections?: CorrectionStore;
  /** Each done job's FHIR Bundle, behind GET /jobs/:id/fhir (the route is absent without it). */
  fhirOutbox?: FhirOutbox;
  /** TLS key and certificate (PEM): the API is served over HTTPS. */
  https?: { key: Buffer; cert: Buffer };
  /** Called after a job is queued (wakes idle workers). */
  onSubmitted?: (job: Job) => void;
  /** The viewer's static build (packages/web/dist), served at /viewer/ without a key; none: no viewer route. */
  viewerDir?: string;
  /** Request logging (pino options); the service logs to stderr, keeping stdout for the command's own output. */
  logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
}

/** The 409 of a job asked for its result before it has one. */
function notDone(j: Job): HttpError {
  const why =
    j.state === 'failed'
      ? `it failed: ${j.error}`
      : j.state === 'cancelled'
        ? 'it was cancelled'
        : `it is ${j.state} (progress ${Math.round(j.progress * 100)} %)`;
  return new HttpError(409, 'NOT_DONE', `job ${j.id} has no result: ${why}`);
}

/** An error answered with its status and message as they are. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The DICOMweb side of a job: the series it reads and, once done, the SEG it stored. */
function dicomwebView(j: Job) {
  if (j.inputFormat !== 'dicomweb' || !j.inputRef) return null;
  const { url, studyInstanceUid, seriesInstanceUid } = JSON.parse(j.inputRef) as DicomwebRef;
  const out = (j.output ? JSON.parse(j.output) : {}) as { segSeriesInstanceUid?: string; segSopInstanceUid?: string };
  return { url, studyInstanceUid, seriesInstanceUid, segSeriesInstanceUid: out.segSeriesInstanceUid ?? null, segSopInstanceUid: out.segSopInstanceUid ?? null };
}

function jobView(j: Job) {
  return {
    id: j.id,
    model: j.model,
    modelVersion: j.modelVersion,
    state: j.state,
    progress: j.progress,
    attempt: j.attempt,
    inputFormat: j.inputFormat,
    error: j.error,
    createdAt: iso(j.createdAt)!,
    startedAt: iso(j.startedAt),
    finishedAt: iso(j.finishedAt),
    resultUrl: j.state === 'done' ? `/jobs/${j.id}/result` : null,
    dicomweb: dicomwebView(j),
    ...extrasView(j),
  };
}

/** What a job asked for beyond the label map and, once done, the uncertainty summary, the explanation and the maps' URLs. */
function extrasView(j: Job) {
  const asked = jobExtras(j);
  const out = j.state === 'done' ? outputExtras(j.output) : {};
  const maps = Object.fromEntries(Object.keys(out.maps ?? {}).map((name) => [name, `/jobs/${j.id}/maps/${name}`]));
  return {
    extras: { uncertainty: asked.uncertainty === true, explain: asked.explain ?? null },
    uncertainty: out.uncertainty ?? null,
    explanation: out.explanation ?? null,
    maps,
  };
}

function keyView(k: ApiKey) {
  return { id: k.id, name: k.name, scopes: k.scopes, createdAt: iso(k.createdAt)!, expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt) };
}

function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : auth.trim();
  }
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

const KEY_REFUSED: Record<string, string> = {
  malformed: 'the API key is malformed (keys look like msk_<16 hex>_<43 characters>)',
  unknown: 'the API key is not known to this server',
  expired: 'the API key has expired: ask an administrator for a new one',
  revoked: 'the API key has been revoked: ask an administrator for a new one',
};

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(o.https ? { https: o.https } : {}),
    logger: o.logger ?? false,
    bodyLimit: 64 * 1024,
    // Strict validation: unknown properties are refused, not silently dropped; no type coercion.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    return503OnClosing: true,
  });
  const uploadsDir = join(o.filesDir, 'uploads');

  app.decorateRequest('apiKey', null);

  app.setErrorHandler((err: FastifyError | HttpError | UploadError, req: FastifyRequest, reply: FastifyReply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply
        .status(status)
        .send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code: 'INTERNAL', message: 'internal server error (logged on the server)' });
    }
    if (status === 401) reply.header('www-authenticate', 'Bearer realm="medseg"');
    const code = 'code' in err && typeof err.code === 'string' ? err.code : (err as FastifyError).validation ? 'BAD_REQUEST' : 'ERROR';
    return reply.status(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code, message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ statusCode: 404, error: 'Not Found', code: 'NO_ROUTE', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    return payload;
  });

  const failureLimit = o.authFailureLimit ?? { max: 20, windowMs: 60_000 };
  const failures = new Map<string, { n: number; since: number }>();
  const failuresOf = (ip: string) => {
    const now = Date.now();
    let f = failures.get(ip);
    if (!f || now - f.since >= failureLimit.windowMs) {
      if (failures.size > 10_000) failures.clear();
      f = { n: 0, since: now };
      failures.set(ip, f);
    }
    return f;
  };

  // A refused key check is an audit event (who tried what, from where), like
  // a granted one that changes something. Refusals count towards the
  // address's failure limit, so a flood of them stops at 429 before it
  // reaches the log.
  const refuse = (req: FastifyRequest, keyId: string | null, e: HttpError): HttpError => {
    o.audit?.append({
      action: 'auth.refused',
      outcome: 'refused',
      keyId,
      detail: `${e.statusCode} ${e.code}: ${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]} from ${req.ip}`,
    });
    return e;
  };

  // Keys are checked first, before any body is read.
  app.addHook('onRequest', async (req) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope) return;
    const f = failuresOf(req.ip);
    const presented = presentedKey(req);
    if (!presented && f.n < failureLimit.max) {
      f.n++;
      throw refuse(req, null, new HttpError(401, 'NO_KEY', 'an API key is required: send "Authorization: Bearer msk_..."'));
    }
    if (f.n >= failureLimit.max) {
      throw new HttpError(
        429,
        'AUTH_RATE_LIMITED',
        `too many failed key checks from this address (${failureLimit.max} per ${failureLimit.windowMs / 1000} s): wait and retry`,
      );
    }
    const r = await o.keys.verify(presented!);
    if (!r.ok) {
      f.n++;
      throw refuse(req, null, new HttpError(401, `KEY_${r.reason.toUpperCase()}`, KEY_REFUSED[r.reason]!));
    }
    if (!allows(r.key, scope))
      throw refuse(req, r.key.id, new HttpError(403, 'SCOPE', `this key lacks the "${scope}" scope (it has: ${r.key.scopes.join(', ')})`));
    req.apiKey = r.key;
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: o.rateLimit.max,
    timeWindow: o.rateLimit.windowMs,
    keyGenerator: (req) => (req.apiKey ? `key:${req.apiKey.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: ctx.statusCode,
      error: 'Too Many Requests',
      code: 'RATE_LIMITED',
      message: `rate limit of ${ctx.max} requests per ${ctx.after} reached for this key: retry later`,
    }),
  });
  await app.register(multipart, {
    throwFileSizeLimit: true,
    // The client's file name as sent (not cut to its base name), so that a name reaching for other folders is seen and refused.
    preservePath: true,
    limits: { fileSize: o.maxUploadBytes, files: 1, fields: 4, fieldSize: 1024, parts: 6, headerPairs: 64 },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'medseg', version: '0.1.0', description: 'Medical image segmentation as a service: submit a case, poll its job, fetch the mask.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'msk_<id>_<secret>' } } },
      security: [{ apiKey: [] }],
    },
    // Shared schemas appear under their own names (components/schemas/Job, ...).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  for (const s of [S.errorSchema, S.jobSchema, S.modelSchema, S.keySchema]) app.addSchema(s);

  const ownJob = async (req: FastifyRequest, id: string): Promise<Job> => {
    const j = await o.jobs.get(id);
    // Another key's job is reported as absent: keys do not learn of each other's jobs.
    if (!j || (!allows(req.apiKey!, 'admin') && j.keyId !== req.apiKey!.id)) throw new HttpError(404, 'NO_JOB', `no job ${id}`);
    return j;
  };

  /** Queues a job with its de-identification mark, and records its submission in the audit log (together on the SQLite queue: audit/queue-change.ts). */
  const submitJob = (j: NewJob, info: ModelInfo, o2: { studyUid?: string; deidentify?: boolean } = {}): Promise<Job> => {
    const deid = o.deidentify && deidentifyWanted(j.model, o2.deidentify, o.deidentify.models) ? o.deidentify.jobs : undefined;
    return changeJob(
      o.jobs,
      o.audit,
      'submit',
      [deid ? { ...j, inputRef: withDeidentify(j.inputRef) } : j],
      (job) =>
        jobEntry(job, 'job.submit', 'accepted', { weightsSha256: info.weightsSha256, studyUid: o2.studyUid, detail: deid ? 'de-identified output' : null }),
      () => deid?.mark(j.id),
    );
  };

  app.get('/health', { schema: { hide: true }, config: { rateLimit: false } }, async () => ({ status: 'ok' }));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // The viewer page: static files that need no key (the page runs models in the browser; the API it calls still asks for keys).
  const viewerDir = o.viewerDir;
  if (viewerDir) {
    app.get('/viewer', { schema: { hide: true }, config: { rateLimit: false } }, async (_req, reply) => reply.redirect('/viewer/'));
    app.get<{ Params: { '*': string } }>('/viewer/*', { schema: { hide: true }, config: { rateLimit: false } }, async (req, reply) => {
      const file = resolveStaticFile(viewerDir, req.params['*']);
      if (!file) throw new HttpError(404, 'NO_FILE', `no viewer file ${req.url.split('?')[0]}`);
      return reply.headers(STATIC_HEADERS).type(file.type).send(createReadStream(file.path));
    });
  }

  app.get(
    '/models',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'the models this server offers, with their model cards and versions',
        response: { 200: { type: 'object', required: ['models'], properties: { models: { type: 'array', items: { $ref: 'Model#' } } } }, ...S.errorResponses },
      },
    },
    async (req) => ({ models: o.catalog.list((id, e) => req.log.warn({ model: id, err: e.message }, 'model folder left out')) }),
  );

  if (o.corrections) {
    registerCorrectionRoutes(app, {
      filesDir: o.filesDir,
      limits: o,
      store: o.corrections,
      catalog: o.catalog,
      audit: o.audit,
      ownJob,
      pacs: o.dicomweb && o.dicomwebLimits ? { servers: o.dicomweb, ...o.dicomwebLimits } : undefined,
    });
  }
  if (o.monitoring) registerMonitoringRoute(app, { catalog: o.catalog, monitoring: o.monitoring.store, settings: o.monitoring.settings });

  /** The extras a submission asks for (job-extras.ts), checked. */
  const submittedExtras = (uncertainty: unknown, explain: unknown) => {
    try {
      return parseJobExtras(uncertainty, explain);
    } catch (e) {
      if (e instanceof JobExtrasError) throw new HttpError(400, 'BAD_FIELD', e.message);
      throw e;
    }
  };

  /** The model a submission names, checked: it exists and takes one channel. */
  const submittedModel = (model: unknown) => {
    if (typeof model !== 'string' || model === '') throw new HttpError(400, 'NO_MODEL', 'the field "model" is missing: name one of GET /models');
    let info;
    try {
      info = o.catalog.info(model);
    } catch (e) {
      if (e instanceof ModelFolderError) throw new HttpError(400, 'UNKNOWN_MODEL', `${e.message}: name one of GET /models`);
      throw e;
    }
    if (info.channels.length !== 1) {
      throw new HttpError(400, 'CHANNELS', `model ${model} needs ${info.channels.length} channels (${info.channels.join(', ')}); a case here holds one image`);
    }
    return { model, info };
  };

  /** A JSON submission: a series on a configured PACS; nothing is fetched until a worker takes the job. */
  const submitDicomweb = async (req: FastifyRequest, reply: FastifyReply) => {
    const b = req.body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new HttpError(400, 'BAD_REQUEST', 'the body must be a JSON object { "model", "dicomweb" }');
    const extra = Object.keys(b).filter((k) => !['model', 'dicomweb', 'deidentify', 'uncertainty', 'explain'].includes(k));
    if (extra.length) throw new HttpError(400, 'BAD_REQUEST', `unknown member(s) of the body: ${extra.join(', ')}`);
    if (b.dicomweb === undefined) {
      throw new HttpError(
        400,
        'NO_DICOMWEB',
        'a JSON submission names a series on the PACS: { "model": ..., "dicomweb": { "studyInstanceUid": ..., "seriesInstanceUid": ... } }; upload a file as multipart/form-data',
      );
    }
    const { model, info } = submittedModel(b.model);
    if (b.deidentify !== undefined && typeof b.deidentify !== 'boolean') throw new HttpError(400, 'BAD_REQUEST', '"deidentify" must be true or false');
    if (b.uncertainty !== undefined && typeof b.uncertainty !== 'boolean') throw new HttpError(400, 'BAD_REQUEST', '"uncertainty" must be true or false');
    const extras = submittedExtras(b.uncertainty, b.explain);
    const ref = checkDicomwebRef(b.dicomweb, o.dicomweb ?? []);
    const id = randomBytes(16).toString('hex');
    const job = await submitJob(
      {
        id,
        model,
        modelVersion: info.version,
        inputPath: '',
        inputFormat: 'dicomweb',
        keyId: req.apiKey!.id,
        inputRef: withExtras(JSON.stringify(ref), extras),
      },
      info,
      { deidentify: b.deidentify as boolean | undefined },
    );
    o.onSubmitted?.(job);
    return reply.status(202).header('location', `/jobs/${id}`).send(jobView(job));
  };

  app.post(
    '/jobs',
    {
      config: { scope: 'submit' },
      schema: {
        summary: 'submit a case for segmentation: an upload (multipart: model, file) or a series on a configured PACS (JSON: model, dicomweb)',
        body: { content: { 'multipart/form-data': { schema: S.submitBody }, 'application/json': { schema: S.dicomwebSubmitBody } } },
        response: { 202: { $ref: 'Job#' }, ...S.errorResponses },
      },
      // The multipart stream is checked by the handler as it is read (size, content, fields), and so is the JSON body; the schemas document them.
      validatorCompiler: () => () => true,
    },
    async (req, reply) => {
      if (!req.isMultipart()) {
        if (/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return submitDicomweb(req, reply);
        throw new HttpError(
          415,
          'NOT_MULTIPART',
          'send the case as multipart/form-data with the fields "model" and "file", or a series on the PACS as JSON { "model", "dicomweb" }',
        );
      }
      const rec = await receiveCase(req.parts(), uploadsDir, o);
      let stored: string | undefined;
      try {
        const { model, info } = submittedModel(rec.fields.model);
        const deidField = rec.fields.deidentify;
        if (deidField !== undefined && deidField !== 'true' && deidField !== 'false') {
          throw new HttpError(400, 'BAD_FIELD', `the field "deidentify" must be true or false (got ${JSON.stringify(deidField.slice(0, 40))})`);
        }
        const extras = submittedExtras(rec.fields.uncertainty, rec.fields.explain);
        const id = randomBytes(16).toString('hex');
        const rel = `uploads/${id}${FORMAT_ENDING[rec.format]}`;
        await rename(rec.path, join(o.filesDir, rel));
        stored = rel;
        // A DICOM zip may hold several series: the job keeps the one that was read.
        const inputRef = withExtras(rec.format === 'dicom-zip' ? JSON.stringify({ seriesInstanceUid: rec.volume.meta.seriesInstanceUID }) : null, extras);
        const job = await submitJob({ id, model, modelVersion: info.version, inputPath: rel, inputFormat: rec.format, keyId: req.apiKey!.id, inputRef }, info, {
          studyUid: rec.volume.meta.studyInstanceUID,
          deidentify: deidField === 'true',
        });
        stored = undefined;
        o.onSubmitted?.(job);
        return reply.status(202).header('location', `/jobs/${id}`).send(jobView(job));
      } finally {
        await unlink(rec.path).catch(() => undefined);
        if (stored) await unlink(join(o.filesDir, stored)).catch(() => undefined);
      }
    },
  );

  app.get(
    '/jobs/:id',
    {
      config: { scope: 'read' },
      schema: { summary: 'status and progress of a job', params: S.jobIdParams, response: { 200: { $ref: 'Job#' }, ...S.errorResponses } },
    },
    async (req) => jobView(await ownJob(req, (req.params as { id: string }).id)),
  );

  app.get(
    '/jobs/:id/result',
    {
      config: { scope: 'read' },
      schema: {
        summary: "the label map, in the input's format (a DICOM SEG for a series from the PACS)",
        params: S.jobIdParams,
        produces: ['application/octet-stream', 'application/gzip', 'image/png', 'application/dicom'],
        response: { 200: { description: 'the label map', type: 'string', format: 'binary' }, ...S.errorResponses },
      },
    },
    async (req, reply) => {
      const j = await ownJob(req, (req.params as { id: string }).id);
      if (j.state !== 'done' || !j.resultPath) throw notDone(j);
      const path = join(o.filesDir, j.resultPath);
      if (!existsSync(path)) throw new Error(`result file of job ${j.id} is missing: ${path}`);
      const file = RESULT_FILE[j.inputFormat as JobInputFormat];
      o.audit?.append(jobEntry(j, 'result.read', 'read', { keyId: req.apiKey!.id }));
      return reply
        .header('content-type', file.type)
        .header('content-disposition', `attachment; filename="${j.id}_seg${file.ending}"`)
        .send(createReadStream(path));
    },
  );

  app.get(
    '/jobs/:id/maps/:name',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          "a map the submission asked for, as NIfTI on the input's grid: entropy and mutual-information (uncertainty: true, each / log K), heatmap (explain: gradcam or gradcampp); overlay: a PNG of image, mask outline and heat map",
        params: S.jobMapParams,
        produces: ['application/gzip', 'image/png'],
        response: { 200: { description: 'the map (float32 NIfTI, gzipped; the overlay a PNG)', type: 'string', format: 'binary' }, ...S.errorResponses },
      },
    },
    async (req, reply) => {
      const { id, name } = req.params as { id: string; name: JobMapName };
      const j = await ownJob(req, id);
      if (j.state !== 'done') throw notDone(j);
      const rel = outputExtras(j.output).maps?.[name];
      if (!rel) {
        throw new HttpError(
          404,
          'NO_MAP',
          `job ${j.id} has no ${name} map: submit with uncertainty=true (entropy, mutual-information) or explain=gradcam (heatmap)`,
        );
      }
      const path = join(o.filesDir, rel);
      if (!existsSync(path)) throw new Error(`map file of job ${j.id} is missing: ${path}`);
      o.audit?.append(jobEntry(j, 'result.read', 'read', { keyId: req.apiKey!.id, detail: `${name} map` }));
      const file = jobMapFile(name);
      return reply
        .header('content-type', file.type)
        .header('content-disposition', `attachment; filename="${j.id}_${name}${file.ending}"`)
        .send(createReadStream(path));
    },
  );

  const outbox = o.fhirOutbox;
  if (outbox) {
    app.get(
      '/jobs/:id/fhir',
      {
        config: { scope: 'read' },
        schema: {
          summary:
            "the job's result as a FHIR R4 transaction Bundle (an Observation per label in mL, a DiagnosticReport); x-medseg-fhir-delivery tells whether it reached the configured FHIR server",
          params: S.jobIdParams,
          produces: ['application/fhir+json'],
          response: { 200: { description: 'a FHIR R4 Bundle', type: 'object', additionalProperties: true }, ...S.errorResponses },
        },
      },
      async (req, reply) => {
        const j = await ownJob(req, (req.params as { id: string }).id);
        if (j.state !== 'done') throw notDone(j);
        const e = outbox.get(j.id);
        if (!e) {
          throw new HttpError(
            404,
            'NO_FHIR',
            `no FHIR Bundle of job ${j.id} on this server: the job was done before FHIR results were kept, or by a worker host (its data folder keeps it)`,
          );
        }
        o.audit?.append(jobEntry(j, 'fhir.read', 'read', { keyId: req.apiKey!.id }));
        return reply.header('content-type', 'application/fhir+json').header('x-medseg-fhir-delivery', e.delivery).send(JSON.stringify(e.bundle));
      },
    );
  }

  app.delete(
    '/jobs/:id',
    {
      config: { scope: 'submit' },
      schema: { summary: 'cancel a queued or running job', params: S.jobIdParams, response: { 200: { $ref: 'Job#' }, ...S.errorResponses } },
    },
    async (req) => {
      const j = await ownJob(req, (req.params as { id: string }).id);
      const r = await changeJob(o.jobs, o.audit, 'cancel', [j.id], (c) =>
        c && c.after === 'cancelled' && c.before !== 'cancelled' ? jobEntry(j, 'job.cancel', 'cancelled', { keyId: req.apiKey!.id }) : null,
      );
      if (!r || r.after !== 'cancelled' || (r.before !== 'queued' && r.before !== 'running')) {
        throw new HttpError(409, 'FINISHED', `job ${j.id} is already ${r?.after ?? j.state}: nothing to cancel`);
      }
      return jobView((await o.jobs.get(j.id))!);
    },
  );

  app.post(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'create an API key (its secret is shown once, in this response)',
        body: S.newKeyBody,
        response: {
          201: { type: 'object', required: ['key', 'secret'], properties: { key: { $ref: 'ApiKey#' }, secret: { type: 'string' } } },
          ...S.errorResponses,
        },
      },
    },
    async (req, reply) => {
      const b = req.body as { name: string; scopes: Scope[]; expiresInSeconds?: number };
      const { key, secret } = await o.keys.create({
        name: b.name,
        scopes: b.scopes,
        expiresAt: b.expiresInSeconds ? Date.now() + b.expiresInSeconds * 1000 : null,
      });
      o.audit?.append({ action: 'key.create', outcome: 'created', keyId: req.apiKey!.id, detail: `key ${key.id} (${key.scopes.join(',')})` });
      return reply.status(201).send({ key: keyView(key), secret });
    },
  );

  app.get(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'the API keys (never their secrets)',
        response: { 200: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { $ref: 'ApiKey#' } } } }, ...S.errorResponses },
      },
    },
    async () => ({ keys: o.keys.list().map(keyView) }),
  );

  app.delete(
    '/keys/:id',
    {
      config: { scope: 'admin' },
      schema: { summary: 'revoke an API key', params: S.keyIdParams, response: { 200: { $ref: 'ApiKey#' }, ...S.errorResponses } },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      if (!o.keys.get(id)) throw new HttpError(404, 'NO_KEY', `no key ${id}`);
      o.keys.revoke(id);
      o.audit?.append({ action: 'key.revoke', outcome: 'revoked', keyId: req.apiKey!.id, detail: `key ${id}` });
      return keyView(o.keys.get(id)!);
    },
  );

  return app;
}
