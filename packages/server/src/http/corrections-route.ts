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
 * A DICOM job (a zip of a series, a series on the PACS) is corrected on its
 * series' grid: the correction comes as a SEG of that series or as a label
 * map holding the series' voxels in any order (corrections/on-series.ts), and
 * is stored, beside the series as NIfTI, like any other.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink } from 'node:fs/promises';
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
import { readReceivedCase, receiveFile, type ReceiveLimits } from '../upload/receive.ts';
import {
  CorrectionError,
  DICOM_JOB_FORMATS,
  isPart10,
  jobSeries,
  resultLabelsOnSeries,
  segLabelsOnSeries,
  volumeLabelsOnSeries,
  type SeriesAccess,
} from '../corrections/on-series.ts';
import { errorResponses, jobIdParams } from './schemas.ts';

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
  /** The PACS a dicomweb job's series is fetched again from. */
  pacs?: SeriesAccess['pacs'];
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
      const dicomJob = DICOM_JOB_FORMATS.has(job.inputFormat);
      if (!VOLUME_FORMATS.has(job.inputFormat) && !dicomJob) {
        throw new CorrectionError(409, 'UNSUPPORTED_JOB', `job ${job.id} has input ${job.inputFormat}; corrections are taken for image and DICOM jobs`);
      }
      if (!req.isMultipart()) throw new CorrectionError(415, 'NOT_MULTIPART', 'send the corrected label map as multipart/form-data field "file"');
      let info;
      try {
        info = o.catalog.info(job.model);
      } catch (e) {
        throw new CorrectionError(409, 'MODEL_GONE', `model ${job.model} of job ${job.id} is no longer offered here: ${(e as Error).message}`);
      }
      const file = await receiveFile(req.parts(), uploadsDir, o.limits);
      let uploaded = file.path;
      let c: Correction;
      // The upload is removed before the reply goes out, so a client that gets its answer finds no temporary file left.
      try {
        const extra = Object.keys(file.fields).filter((k) => k !== 'author');
        if (extra.length) throw new CorrectionError(400, 'BAD_FIELD', `unknown field(s) ${extra.join(', ')}: send "file" and optionally "author"`);
        const author = file.fields.author?.trim() || null;
        if (author !== null && (author.length > 200 || /[\u0000-\u001f\u007f]/.test(author))) {
          throw new CorrectionError(400, 'BAD_FIELD', '"author" is at most 200 characters, without control characters');
        }
        const labelNames = info.labels as Record<string, string>;
        // The grid the correction is stored on, the model's labels and the correction's on it, and the input image(s) beside it.
        let grid: Volume;
        let model: ArrayLike<number>;
        let data: ArrayLike<number>;
        let images: () => Promise<Volume[]>;
        if (dicomJob) {
          const source = await jobSeries(job, { filesDir: o.filesDir, limits: o.limits, pacs: o.pacs });
          grid = source;
          model = await resultLabelsOnSeries(job, source, labelNames, o.filesDir);
          if (isPart10(file.head)) {
            data = segLabelsOnSeries(await readFile(file.path), source, labelNames, 'the correction');
          } else {
            const rec = await readReceivedCase(file, o.limits);
            uploaded = rec.path;
            if (!VOLUME_FORMATS.has(rec.format))
              throw new CorrectionError(415, 'BAD_FORMAT', `a correction is a DICOM SEG or a NIfTI, NRRD or PNG label map, not ${rec.format}`);
            data = volumeLabelsOnSeries(rec.volume, source);
          }
          images = async () => [source];
        } else {
          if (isPart10(file.head))
            throw new CorrectionError(
              415,
              'BAD_FORMAT',
              `job ${job.id} segmented a ${job.inputFormat} image: send the correction as a label map on its grid, not DICOM`,
            );
          const rec = await readReceivedCase(file, o.limits);
          uploaded = rec.path;
          if (!VOLUME_FORMATS.has(rec.format))
            throw new CorrectionError(415, 'BAD_FORMAT', `a correction is a NIfTI, NRRD or PNG label map, not ${rec.format}`);
          const corrected = rec.volume;
          const result = await readVolume(join(o.filesDir, job.resultPath));
          if (corrected.channels !== 1) throw new CorrectionError(422, 'WRONG_GRID', `a label map has one channel, this file has ${corrected.channels}`);
          const mismatch = sameGrid(corrected, result);
          if (mismatch) throw new CorrectionError(422, 'WRONG_GRID', `the correction is not on the job's grid: ${mismatch}`);
          grid = result;
          model = result.data as ArrayLike<number>;
          data = corrected.data as ArrayLike<number>;
          images = () => readInputCase(join(o.filesDir, job.inputPath), info.channels.length);
        }
        const known = new Set(Object.keys(info.labels).map(Number));
        const bad = new Set<number>();
        for (let i = 0; i < data.length && bad.size < 5; i++) if (!known.has(data[i]!)) bad.add(data[i]!);
        if (bad.size) {
          throw new CorrectionError(422, 'BAD_LABELS', `values ${[...bad].join(', ')} are not labels of model ${job.model} (${[...known].join(', ')})`);
        }
        const labels: Volume = { ...grid, data: Uint8Array.from(data), channels: 1, meta: {} };
        const id = randomBytes(8).toString('hex');
        const dir = join(o.filesDir, 'corrections', job.model);
        await Promise.all(['images', 'labels', 'saved'].map((d) => mkdir(join(dir, d), { recursive: true })));
        const saved = `corrections/${job.model}/saved/${id}.nii.gz`;
        await writeVolume(join(o.filesDir, saved), labels);
        // The job's input beside its latest correction, as fine-tuning reads them (channel files, NIfTI).
        if (!existsSync(join(dir, 'images', `${job.id}_0000.nii.gz`))) {
          for (const [c, v] of (await images()).entries()) await writeVolume(join(dir, 'images', `${job.id}_${String(c).padStart(4, '0')}.nii.gz`), v);
        }
        await writeVolume(join(dir, 'labels', `${job.id}.nii.gz`), labels);
        c = {
          id,
          jobId: job.id,
          model: job.model,
          modelVersion: job.modelVersion,
          keyId: req.apiKey!.id,
          author,
          at: Date.now(),
          dice: correctionDice(model, labels.data as ArrayLike<number>),
          path: saved,
        };
        o.store.record(c);
        o.audit?.append(
          jobEntry(job, 'correction.save', 'saved', { keyId: req.apiKey!.id, detail: `correction ${id}, mean Dice ${c.dice.mean?.toFixed(4) ?? '-'}` }),
        );
      } finally {
        await unlink(uploaded).catch(() => undefined);
      }
      return reply.status(201).send(view(c));
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
