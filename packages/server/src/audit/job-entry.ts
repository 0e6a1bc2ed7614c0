/**
 * The audit record of something done to a job: the job's key, model and
 * version, and the study and series it reads (from its DICOMweb reference or
 * DICOM zip, or from the volume once read), with the action and outcome.
 */
import type { Job } from '../store/jobs.ts';
import type { AuditEntry } from './log.ts';

/** Study and series UIDs a job's input reference names (a DICOMweb series, the chosen series of a DICOM zip). */
export function jobInputUids(job: Pick<Job, 'inputRef'>): { studyUid: string | null; seriesUid: string | null } {
  if (!job.inputRef) return { studyUid: null, seriesUid: null };
  try {
    const r = JSON.parse(job.inputRef) as { studyInstanceUid?: unknown; seriesInstanceUid?: unknown };
    return {
      studyUid: typeof r.studyInstanceUid === 'string' ? r.studyInstanceUid : null,
      seriesUid: typeof r.seriesInstanceUid === 'string' ? r.seriesInstanceUid : null,
    };
  } catch {
    return { studyUid: null, seriesUid: null };
  }
}

export function jobEntry(
  job: Pick<Job, 'id' | 'keyId' | 'model' | 'modelVersion' | 'inputRef'>,
  action: string,
  outcome: string,
  extra: Partial<AuditEntry> = {},
): AuditEntry {
  const uids = jobInputUids(job);
  return {
    action,
    outcome,
    keyId: job.keyId,
    model: job.model,
    modelVersion: job.modelVersion,
    jobId: job.id,
    studyUid: uids.studyUid,
    seriesUid: uids.seriesUid,
    ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined && v !== null)),
  };
}
