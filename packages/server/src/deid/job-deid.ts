/**
 * Which jobs hand out de-identified DICOM, decided at submission (the
 * model's setting or the request's choice): the job carries it in its input
 * reference (`"deidentify": true`), so a worker on any host sees it, and the
 * submitting server's database keeps a table of their ids as well.
 */
import type { Db } from '../store/db.ts';
import type { Job } from '../store/jobs.ts';

const SCHEMA = 'CREATE TABLE IF NOT EXISTS job_deidentify (job_id TEXT PRIMARY KEY, at INTEGER NOT NULL)';

export class JobDeidentify {
  private readonly stmt;

  constructor(db: Db) {
    db.exec(SCHEMA);
    this.stmt = {
      mark: db.prepare('INSERT OR IGNORE INTO job_deidentify (job_id, at) VALUES (?, ?)'),
      has: db.prepare('SELECT 1 FROM job_deidentify WHERE job_id = ?'),
    };
  }

  mark(jobId: string): void {
    this.stmt.mark.run(jobId, Date.now());
  }

  wanted(jobId: string): boolean {
    return this.stmt.has.get(jobId) !== undefined;
  }
}

/** A job's input reference (JSON or none) with the de-identification wish in it. */
export function withDeidentify(inputRef: string | null | undefined): string {
  const ref = inputRef ? (JSON.parse(inputRef) as Record<string, unknown>) : {};
  return JSON.stringify({ ...ref, deidentify: true });
}

/** Whether a job's input reference asks for de-identified output. */
export function refWantsDeidentify(job: Pick<Job, 'inputRef'>): boolean {
  if (!job.inputRef) return false;
  try {
    return (JSON.parse(job.inputRef) as { deidentify?: unknown }).deidentify === true;
  } catch {
    return false;
  }
}

/** Whether a submission's DICOM goes out de-identified: the model's setting ('*' for all) or the request's wish. */
export function deidentifyWanted(model: string, requested: boolean | undefined, models: readonly string[]): boolean {
  return requested === true || models.includes('*') || models.includes(model);
}
