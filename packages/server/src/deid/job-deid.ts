/**
 * Which jobs hand out de-identified DICOM: a table of their ids, written with
 * the submission (the model's setting or the request's choice, decided then).
 */
import type { Db } from '../store/db.ts';

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

/** Whether a submission's DICOM goes out de-identified: the model's setting ('*' for all) or the request's wish. */
export function deidentifyWanted(model: string, requested: boolean | undefined, models: readonly string[]): boolean {
  return requested === true || models.includes('*') || models.includes(model);
}
