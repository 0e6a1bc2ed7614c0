/**
 * Corrections of a done job's segmentation (the viewer's "save to the
 * service"): POST /jobs/:id/corrections takes the corrected label map
 * (multipart "file", NIfTI/NRRD/PNG on the job's input grid, with an
 * optional "author"), checks it against the job's result (same grid, labels
 * of the model), and records who saved it, when, for which model version,
 * and the Dice between the model's output and the correction. The files are
 * kept in the layout `medseg finetune <model> --corrections <dir>` reads:
 * corrections/<model>/images/<job>_<cccc>.nii.gz (the job's input) and
 * labels/<job>.nii.gz (the latest correction of the job), and every saved
 * version under saved/. GET /jobs/:id/corrections lists a job's corrections.
 * DICOM jobs are refused for now (their result is a SEG on the source
 * series; a correction would have to come back as a SEG).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, unlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readInputCase } from '@medseg/medseg/infer/predict';
import { readVolume, writeVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import type { AuditLog } from '../audit/log.ts';
import { jobEntry } from '../audit/job-entry.ts';
import { correctionDice, type Correction, type CorrectionStore } from '../corrections/store.ts';
import type { ModelCatalog } from '../models/catalog.ts';
import type { Job } from '../store/jobs.ts';
import { receiveCase, type ReceiveLimits } from '../upload/receive.ts';
import { errorResponses, jobIdParams } from './schemas.ts';

/** A refused correction: answered with its status, code and message by the app's error handler. */
class CorrectionError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The upload formats whose result is a label map file: the jobs a correction is taken for, and the formats a correction comes in. */
const VOLUME_FORMATS = new Set(['nifti', 'nifti-gz', 'nrrd', 'png']);

const correctionSchema = {
  type: 'object',
  required: ['id', 'jobId', 'model', 'modelVersion', 'keyId', 'author', 'at', 'dice'],
  properties: {
    id: { type: 'string' },
    jobId: { type: 'string' },
    model: { type: 'string' },
    modelVersion: { type: 'string' },
    keyId: { type: 'string' },
    author: { type: ['string', 'null'] },
    at: { type: 'string', format: 'date-time' },
    dice: {
      type: 'object',
      required: ['perLabel', 'mean'],
      properties: { perLabel: { type: 'object', additionalProperties: { type: 'number' } }, mean: { type: ['number', 'null'] } },
    },
  },
} as const;

const view = (c: Correction) => ({ ...c, at: new Date(c.at).toISOString() });

/** Whether two grids are the same: size, and spacing and origin within 1e-3 of their magnitude. */
function sameGrid(a: Volume, b: Volume): string | null {
  if (a.size.join() !== b.size.join()) return `size ${a.size.join('x')} is not the result's ${b.size.join('x')}`;
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-3 * Math.max(1, Math.abs(x), Math.abs(y));
  if (!a.spacing.every((s, i) => close(s, b.spacing[i]!))) return `spacing ${a.spacing.join(', ')} is not the result's ${b.spacing.join(', ')}`;
  if (!a.origin.every((s, i) => close(s, b.origin[i]!))) return `origin ${a.origin.join(', ')} is not the result's ${b.origin.join(', ')}`;
  return null;
}

export interface CorrectionRouteOptions {
  filesDir: string;
  limits: ReceiveLimits;
  store: CorrectionStore;
  catalog: ModelCatalog;
  audit?: AuditLog;
  /** The job of the request's key (404 for another key's job, unless admin). */
  ownJob: (req: FastifyRequest, id: string) => Promise<Job>;
}

export function registerCorrectionRoutes(app: FastifyInstance, o: CorrectionRouteOptions): void {
  const uploadsDir = join(o.filesDir, 'uploads');

  app.post(
    '/jobs/:id/corrections',
    {
      config: { scope: 'submit' },
      schema: {
        summary:
          "save a corrected label map of a done job (multipart: file, author): recorded with the key, the time, the model version and its Dice against the model's output",
        params: jobIdParams,
        response: { 201: correctionSchema, ...errorResponses },
      },
      validatorCompiler: () => () => true,
    },
    async (req, reply) => {
      const job = await o.ownJob(req, (req.params as { id: string }).id);
      if (job.state !== 'done' || !job.resultPath) throw new CorrectionError(409, 'NOT_DONE', `job ${job.id} has no result to correct (it is ${job.state})`);
      if (!VOLUME_FORMATS.has(job.inputFormat)) {
        throw new CorrectionError(409, 'DICOM_NOT_SUPPORTED', `job ${job.id} segmented DICOM; corrections are taken for NIfTI, NRRD and PNG jobs`);
      }
      if (!req.isMultipart()) throw new CorrectionError(415, 'NOT_MULTIPART', 'send the corrected label map as multipart/form-data field "file"');
      const rec = await receiveCase(req.parts(), uploadsDir, o.limits);
      try {
        if (!VOLUME_FORMATS.has(rec.format)) throw new CorrectionError(415, 'BAD_FORMAT', `a correction is a NIfTI, NRRD or PNG label map, not ${rec.format}`);
        const extra = Object.keys(rec.fields).filter((k) => k !== 'author');
        if (extra.length) throw new CorrectionError(400, 'BAD_FIELD', `unknown field(s) ${extra.join(', ')}: send "file" and optionally "author"`);
        const author = rec.fields.author?.trim() || null;
        if (author !== null && (author.length > 200 || /[\u0000-\u001f\u007f]/.test(author))) {
          throw new CorrectionError(400, 'BAD_FIELD', '"author" is at most 200 characters, without control characters');
        }
        const corrected = rec.volume;
        const result = await readVolume(join(o.filesDir, job.resultPath));
        if (corrected.channels !== 1) throw new CorrectionError(422, 'WRONG_GRID', `a label map has one channel, this file has ${corrected.channels}`);
        const grid = sameGrid(corrected, result);
        if (grid) throw new CorrectionError(422, 'WRONG_GRID', `the correction is not on the job's grid: ${grid}`);
        let info;
        try {
          info = o.catalog.info(job.model);
        } catch (e) {
          throw new CorrectionError(409, 'MODEL_GONE', `model ${job.model} of job ${job.id} is no longer offered here: ${(e as Error).message}`);
        }
        const known = new Set(Object.keys(info.labels).map(Number));
        const data = corrected.data as ArrayLike<number>;
        const bad = new Set<number>();
        for (let i = 0; i < data.length && bad.size < 5; i++) if (!known.has(data[i]!)) bad.add(data[i]!);
        if (bad.size) {
          throw new CorrectionError(422, 'BAD_LABELS', `values ${[...bad].join(', ')} are not labels of model ${job.model} (${[...known].join(', ')})`);
        }
        const labels: Volume = { ...result, data: Uint8Array.from(data), channels: 1 };
        const id = randomBytes(8).toString('hex');
        const dir = join(o.filesDir, 'corrections', job.model);
        await Promise.all(['images', 'labels', 'saved'].map((d) => mkdir(join(dir, d), { recursive: true })));
        const saved = `corrections/${job.model}/saved/${id}.nii.gz`;
        await writeVolume(join(o.filesDir, saved), labels);
        // The job's input beside its latest correction, as fine-tuning reads them (channel files, NIfTI).
        if (!existsSync(join(dir, 'images', `${job.id}_0000.nii.gz`))) {
          const images = await readInputCase(join(o.filesDir, job.inputPath), info.channels.length);
          for (const [c, v] of images.entries()) await writeVolume(join(dir, 'images', `${job.id}_${String(c).padStart(4, '0')}.nii.gz`), v);
        }
        await writeVolume(join(dir, 'labels', `${job.id}.nii.gz`), labels);
        const c: Correction = {
          id,
          jobId: job.id,
          model: job.model,
          modelVersion: job.modelVersion,
          keyId: req.apiKey!.id,
          author,
          at: Date.now(),
          dice: correctionDice(result.data as ArrayLike<number>, labels.data as ArrayLike<number>),
          path: saved,
        };
        o.store.record(c);
        o.audit?.append(
          jobEntry(job, 'correction.save', 'saved', { keyId: req.apiKey!.id, detail: `correction ${id}, mean Dice ${c.dice.mean?.toFixed(4) ?? '-'}` }),
        );
        return reply.status(201).send(view(c));
      } finally {
        await unlink(rec.path).catch(() => undefined);
      }
    },
  );

  app.get(
    '/jobs/:id/corrections',
    {
      config: { scope: 'read' },
      schema: {
        summary: "a job's saved corrections, oldest first",
        params: jobIdParams,
        response: {
          200: { type: 'object', required: ['corrections'], properties: { corrections: { type: 'array', items: correctionSchema } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const job = await o.ownJob(req, (req.params as { id: string }).id);
      return { corrections: o.store.ofJob(job.id).map(view) };
    },
  );
}
