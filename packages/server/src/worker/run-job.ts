/**
 * One job, in a worker process: the model folder is loaded (and kept for the
 * next jobs), the uploaded case read, segmented by the library's
 * predictVolumes (with the uncertainty maps and heat map the submission asked
 * for: predict-extras.ts), and the label map written in the input's format. Progress
 * goes into the lease's heartbeats; when the lease is lost (the job was
 * cancelled, or the lease expired and another worker took the job) the work
 * stops and nothing is recorded. The result is written atomically under a
 * name of its own attempt and recorded only if the lease still holds, so a
 * result file is either complete and recorded or removed.
 *
 * DICOM input gives a DICOM SEG as the result: an uploaded zip of a series
 * is read again from the uploads folder; a DICOMweb series is read from its
 * PACS (QIDO-RS, then WADO-RS), and its SEG, once written to the results
 * folder, is stored back to the same PACS (STOW-RS) before the job is
 * recorded done with the SEG's UIDs.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { disposeModel, loadModel, readInputCase, type LoadedModel } from '@medseg/medseg/infer/predict';
import { writeVolume } from '@medseg/medseg/io/read';
import { MedsegIoError } from '@medseg/medseg/io/errors';
import type { Volume } from '@medseg/medseg/io/volume';
import { PredictOptionError } from '@medseg/medseg/infer/output-format';
import { MedsegExplainError } from '@medseg/medseg/explain/errors';
import { writeFileAtomic } from '@medseg/medseg/util/atomic-write';
import { ModelFolderError, type ModelCatalog } from '../models/catalog.ts';
import type { Job, Lease } from '../store/jobs.ts';
import type { JobQueue } from '../store/queue.ts';
import type { LeaseKeeper } from './lease-keeper.ts';
import { RESULT_FILE, type JobInputFormat } from '../job-formats.ts';
import type { DicomwebServer } from '../config.ts';
import { DicomwebClient } from '../dicomweb/client.ts';
import { PacsError } from '../dicomweb/errors.ts';
import { DicomwebRefError, normaliseUrl, type DicomwebRef } from '../dicomweb/reference.ts';
import { fetchSeriesVolume, withRetries, type RetryOptions } from '../dicomweb/series.ts';
import { DicomZipError, readDicomZip } from '../upload/dicom-zip.ts';
import { jobSeg } from './seg-result.ts';
import { predictWithExtras } from './predict-extras.ts';
import { jobExtras } from '../job-extras.ts';
import type { AuditEntry, AuditLog } from '../audit/log.ts';
import { jobEntry } from '../audit/job-entry.ts';
import { changeJob } from '../audit/queue-change.ts';
import { inputFingerprint, type InputFingerprint } from '../monitoring/input-fingerprint.ts';
import type { MonitoringStore } from '../monitoring/store.ts';
import type { JobDeidentify } from '../deid/job-deid.ts';
import { deidentifyOutgoing, patientPseudonym } from '../deid/outgoing.ts';
import { refWantsDeidentify } from '../deid/job-deid.ts';
import { readDeidSecret } from '../deid/secret.ts';
import { DEFAULT_PATIENT_ID_SYSTEM, PSEUDONYM_SYSTEM, fhirResultBundle } from '../fhir/resources.ts';
import type { FhirOutbox } from '../fhir/outbox.ts';

export interface JobContext {
  jobs: JobQueue;
  /** Renews the lease while the job runs (on a thread of its own: prediction holds this one). */
  keeper: Pick<LeaseKeeper, 'hold' | 'alive' | 'lost' | 'release'>;
  catalog: ModelCatalog;
  /** Holds uploads/, results/ and the de-identification secret; the job's paths are relative to it. */
  filesDir: string;
  leaseMs: number;
  heartbeatMs: number;
  log: (msg: string) => void;
  /** Limits of what DICOM input may take when it is read (a DICOM zip, a series from a PACS). */
  limits: { maxVoxelBytes: number; maxDecompressedBytes: number };
  /** The PACS of DICOMweb jobs, and the limits of what is read from them. */
  pacs?: { servers: DicomwebServer[]; timeoutMs: number; maxBytes: number; retry?: RetryOptions };
  /** The audit log: each recorded outcome is appended to it in the same transaction. */
  audit?: AuditLog;
  /** Where each completed job's input fingerprint and uncertainty go (monitoring/). */
  monitoring?: MonitoringStore;
  /** The jobs whose DICOM goes out de-identified (with the secret in the data folder). */
  deidentify?: JobDeidentify;
  /** Where each done job's FHIR Bundle is kept; `send`: queued for the FHIR server (the server process sends it). */
  fhir?: { outbox: FhirOutbox; send: boolean };
  /** The identifier system of DICOM Patient IDs in the FHIR resources. */
  fhirPatientIdSystem?: string;
}

/** The FHIR Bundle of a done job's result (fhir/resources.ts), with its patient as the subject for DICOM input. */
function jobBundle(
  ctx: JobContext,
  job: Job,
  labels: Volume,
  plan: { labels: Record<number, string> },
  o: { source?: Volume; deidentified: boolean; study?: string; segSop?: string; segUrl?: string },
): object {
  const labelNames = Object.fromEntries(Object.entries(plan.labels).map(([k, v]) => [k, String(v)]));
  const patientId = o.source?.meta.patientId;
  // De-identified output names the patient by the pseudonym its SEG carries, never by the hospital's ID or name.
  const patient = patientId
    ? o.deidentified
      ? { id: patientPseudonym(patientId, readDeidSecret(ctx.filesDir)), system: PSEUDONYM_SYSTEM }
      : { id: patientId, system: ctx.fhirPatientIdSystem ?? DEFAULT_PATIENT_ID_SYSTEM, name: o.source?.meta.patientName }
    : undefined;
  return fhirResultBundle(labels, {
    jobId: job.id,
    model: job.model,
    modelVersion: job.modelVersion,
    labels: labelNames,
    studyInstanceUid: o.study,
    segSopInstanceUid: o.segSop,
    resultUrl: o.segUrl,
    resultContentType: o.segSop ? 'application/dicom' : RESULT_FILE[job.inputFormat as JobInputFormat].type,
    issued: new Date().toISOString(),
    ...(patient ? { patient } : {}),
  });
}

/** The audit entry of a job's outcome, made when the outcome was recorded under the lease (null when it was not). */
function outcomeEntry(ctx: JobContext, job: Job, outcome: 'done' | 'failed', source?: Volume, detail?: string): (ok: boolean) => AuditEntry | null {
  let weightsSha256: string | undefined;
  try {
    weightsSha256 = ctx.catalog.info(job.model).weightsSha256;
  } catch {
    weightsSha256 = undefined; // the model folder is gone or unreadable: the record keeps the version alone
  }
  return (ok) =>
    ok
      ? jobEntry(job, `job.${outcome}`, outcome, {
          weightsSha256,
          studyUid: source?.meta.studyInstanceUID,
          seriesUid: source?.meta.seriesInstanceUID,
          detail,
        })
      : null;
}

/** The lease was lost while working: stop without recording anything. */
class LeaseLost extends Error {}

/** A message for the user of a failure that is about the case or the model, not a bug. */
function userMessage(e: unknown): string | undefined {
  if (e instanceof MedsegIoError) return e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
  if (
    e instanceof PredictOptionError ||
    e instanceof ModelFolderError ||
    e instanceof PacsError ||
    e instanceof DicomwebRefError ||
    e instanceof DicomZipError ||
    e instanceof MedsegExplainError
  ) {
    return e.message;
  }
  return undefined;
}

/** The client of the job's PACS, which must still be configured (the settings may have changed since the job was submitted). */
function pacsClient(ctx: JobContext, ref: DicomwebRef): DicomwebClient {
  const server = ctx.pacs?.servers.find((s) => normaliseUrl(s.url) === ref.url);
  if (!ctx.pacs || !server) {
    throw new DicomwebRefError(400, 'PACS_NOT_ALLOWED', `the PACS ${ref.url} of this job is no longer configured on the server: submit again`);
  }
  return new DicomwebClient({ url: server.url, headers: server.headers, timeoutMs: ctx.pacs.timeoutMs, maxBytes: ctx.pacs.maxBytes });
}

/** Loaded models by id, with the version they were loaded at; one at a time is kept (memory). */
export class ModelCache {
  private current: { id: string; version: string; model: LoadedModel } | undefined;

  constructor(private readonly catalog: ModelCatalog) {}

  /** The model of a job; throws MedsegIoError when the model changed since the job was submitted. */
  get(job: Job): LoadedModel {
    if (this.current?.id === job.model && this.current.version === job.modelVersion) return this.current.model;
    const info = this.catalog.info(job.model);
    if (info.version !== job.modelVersion) {
      throw new ModelFolderError(`model ${job.model} changed since the job was submitted (version ${job.modelVersion}, now ${info.version}): submit again`);
    }
    this.dispose();
    const model = loadModel(this.catalog.folder(job.model)!);
    this.current = { id: job.model, version: info.version, model };
    return model;
  }

  dispose(): void {
    if (this.current) disposeModel(this.current.model);
    this.current = undefined;
  }
}

/** Works one claimed job to its recorded outcome (or to a lost lease); returns the outcome. */
export async function runJob(ctx: JobContext, models: ModelCache, job: Job, lease: Lease): Promise<'done' | 'failed' | 'lost'> {
  let progress = 0;
  let lost = false;
  ctx.keeper.hold(lease);
  const beat = () => {
    ctx.keeper.alive(progress);
    if (ctx.keeper.lost()) lost = true;
  };
  // Between the synchronous stretches (reading, writing) a timer shows the keeper this thread is alive; during prediction the tile callback does.
  const timer = setInterval(beat, ctx.heartbeatMs);
  let resultRel: string | undefined;
  let extraFiles: string[] = [];
  let source: Volume | undefined;
  try {
    const model = models.get(job);
    progress = 0.02;
    const limits = ctx.limits;
    const ref = job.inputFormat === 'dicomweb' && job.inputRef ? (JSON.parse(job.inputRef) as DicomwebRef) : undefined;
    const pacs = ref ? pacsClient(ctx, ref) : undefined;
    let images: Volume[];
    if (ref && pacs) {
      images = [await fetchSeriesVolume(pacs, ref, { maxVoxelBytes: limits.maxVoxelBytes, retry: ctx.pacs?.retry })];
    } else if (job.inputFormat === 'dicom-zip') {
      const series = job.inputRef ? (JSON.parse(job.inputRef) as { seriesInstanceUid?: string }).seriesInstanceUid : undefined;
      images = [await readDicomZip(join(ctx.filesDir, job.inputPath), { ...limits, seriesInstanceUid: series })];
    } else {
      images = await readInputCase(join(ctx.filesDir, job.inputPath), model.plan.channels.length);
    }
    source = images[0];
    if (lost) throw new LeaseLost();
    const { pred, extras, written } = await predictWithExtras(model, images, jobExtras(job), {
      filesDir: ctx.filesDir,
      jobId: job.id,
      attempt: lease.attempt,
      // The class probabilities give the uncertainty score monitoring compares with the validation cases'.
      keepProbabilities: ctx.monitoring !== undefined,
      onProgress: (fraction) => {
        progress = 0.05 + 0.9 * fraction;
        beat();
        if (lost) throw new LeaseLost();
      },
    });
    extraFiles = written;
    if (lost) throw new LeaseLost();
    progress = 0.95;
    resultRel = `results/${job.id}.a${lease.attempt}${RESULT_FILE[job.inputFormat as JobInputFormat].ending}`;
    let output: string | null = null;
    let deidentified = false;
    if (job.inputFormat === 'dicom-zip' || ref) {
      const made = jobSeg(job.id, pred.labels, images[0]!, model.plan, { id: job.model, version: job.modelVersion });
      deidentified = refWantsDeidentify(job) || ctx.deidentify?.wanted(job.id) === true;
      // De-identified, the SEG and every UID it references are remapped, its study included.
      const seg = deidentified ? deidentifyOutgoing(made.bytes, readDeidSecret(ctx.filesDir)) : { ...made, studyInstanceUid: ref?.studyInstanceUid };
      await writeFileAtomic(join(ctx.filesDir, resultRel), seg.bytes);
      output = JSON.stringify({
        segSeriesInstanceUid: seg.seriesInstanceUid,
        segSopInstanceUid: seg.sopInstanceUid,
        ...(deidentified ? { deidentified: true, segStudyInstanceUid: seg.studyInstanceUid } : {}),
        ...extras,
      });
      if (ref && pacs) {
        if (lost) throw new LeaseLost();
        await withRetries(() => pacs.store([seg.bytes], seg.studyInstanceUid ?? ref.studyInstanceUid), ctx.pacs?.retry);
      }
    } else {
      await writeVolume(join(ctx.filesDir, resultRel), pred.labels);
      if (Object.keys(extras).length) output = JSON.stringify(extras);
    }
    let input: InputFingerprint | undefined;
    try {
      if (ctx.monitoring) input = inputFingerprint(images, pred.labels, pred.probabilities);
    } catch (e) {
      ctx.log(`job ${job.id}: no monitoring record: ${(e as Error).message}`);
    }
    const out = output ? (JSON.parse(output) as { segSopInstanceUid?: string; segSeriesInstanceUid?: string; segStudyInstanceUid?: string }) : {};
    const study = out.segStudyInstanceUid ?? images[0]?.meta.studyInstanceUID;
    const segUrl =
      ref && out.segSopInstanceUid && study ? `${ref.url}/studies/${study}/series/${out.segSeriesInstanceUid}/instances/${out.segSopInstanceUid}` : undefined;
    const bundle = ctx.fhir ? jobBundle(ctx, job, pred.labels, model.plan, { source, deidentified, study, segSop: out.segSopInstanceUid, segUrl }) : undefined;
    if (lost) throw new LeaseLost();
    ctx.keeper.release();
    // The monitoring record, the FHIR Bundle and the audit record go in with the outcome (in its transaction on the SQLite queue): a job seen done has them.
    const entry = outcomeEntry(ctx, job, 'done', source);
    const done = await changeJob(ctx.jobs, ctx.audit, 'complete', [lease, resultRel, output], (ok) => {
      if (ok && input) ctx.monitoring!.record({ jobId: job.id, model: job.model, modelVersion: job.modelVersion, keyId: job.keyId, input });
      if (ok && bundle) ctx.fhir!.outbox.put(job.id, bundle, ctx.fhir!.send);
      return entry(ok);
    });
    if (done) return 'done';
    for (const f of [resultRel, ...extraFiles]) await unlink(join(ctx.filesDir, f)).catch(() => undefined);
    return 'lost';
  } catch (e) {
    for (const f of [...(resultRel ? [resultRel] : []), ...extraFiles]) await unlink(join(ctx.filesDir, f)).catch(() => undefined);
    if (e instanceof LeaseLost || lost) return 'lost';
    const message = userMessage(e);
    if (message === undefined) ctx.log(`job ${job.id} failed: ${(e as Error).stack ?? String(e)}`);
    ctx.keeper.release();
    const msg = message ?? 'internal error while predicting (logged on the server)';
    return (await changeJob(ctx.jobs, ctx.audit, 'fail', [lease, msg], outcomeEntry(ctx, job, 'failed', source, msg))) ? 'failed' : 'lost';
  } finally {
    clearInterval(timer);
    ctx.keeper.release();
  }
}
