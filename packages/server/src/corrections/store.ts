/**
 * The corrections people saved for done jobs (the viewer's "save to the
 * service"): who (API key and an optional author), when, which model version
 * made the segmentation, and how far the correction is from it (Dice per
 * label), in a table of the service database. The corrected label maps
 * themselves are files (corrections/files.ts).
 */
import type { Db } from '../store/db.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS corrections (
  id            TEXT PRIMARY KEY,
  job_id        TEXT NOT NULL,
  model         TEXT NOT NULL,
  model_version TEXT NOT NULL,
  key_id        TEXT NOT NULL,
  author        TEXT,
  at            INTEGER NOT NULL,
  dice          TEXT NOT NULL,
  path          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_by_job ON corrections (job_id, at);
`;

/** Dice between the model's label map and the correction: per foreground label present in either, and their mean. */
export interface CorrectionDice {
  perLabel: Record<string, number>;
  mean: number | null;
}

export interface Correction {
  id: string;
  jobId: string;
  model: string;
  modelVersion: string;
  keyId: string;
  author: string | null;
  at: number;
  dice: CorrectionDice;
  /** The corrected label map, relative to the files folder. */
  path: string;
}

interface Row {
  id: string;
  job_id: string;
  model: string;
  model_version: string;
  key_id: string;
  author: string | null;
  at: number;
  dice: string;
  path: string;
}

const correction = (r: Row): Correction => ({
  id: r.id,
  jobId: r.job_id,
  model: r.model,
  modelVersion: r.model_version,
  keyId: r.key_id,
  author: r.author,
  at: r.at,
  dice: JSON.parse(r.dice) as CorrectionDice,
  path: r.path,
});

export class CorrectionStore {
  private readonly stmt;

  constructor(db: Db) {
    db.exec(SCHEMA);
    this.stmt = {
      put: db.prepare(
        'INSERT INTO corrections (id, job_id, model, model_version, key_id, author, at, dice, path) VALUES (@id, @jobId, @model, @modelVersion, @keyId, @author, @at, @dice, @path)',
      ),
      ofJob: db.prepare('SELECT * FROM corrections WHERE job_id = ? ORDER BY at, rowid'),
    };
  }

  record(c: Correction): void {
    this.stmt.put.run({ ...c, dice: JSON.stringify(c.dice) });
  }

  /** A job's corrections, oldest first. */
  ofJob(jobId: string): Correction[] {
    return (this.stmt.ofJob.all(jobId) as Row[]).map(correction);
  }
}

/** Dice per foreground label of two label maps of the same grid. */
export function correctionDice(model: ArrayLike<number>, corrected: ArrayLike<number>): CorrectionDice {
  const inModel = new Map<number, number>();
  const inCorrected = new Map<number, number>();
  const both = new Map<number, number>();
  for (let i = 0; i < model.length; i++) {
    const a = model[i]!;
    const b = corrected[i]!;
    if (a) inModel.set(a, (inModel.get(a) ?? 0) + 1);
    if (b) inCorrected.set(b, (inCorrected.get(b) ?? 0) + 1);
    if (a && a === b) both.set(a, (both.get(a) ?? 0) + 1);
  }
  const labels = [...new Set([...inModel.keys(), ...inCorrected.keys()])].sort((x, y) => x - y);
  const perLabel: Record<string, number> = {};
  for (const l of labels) perLabel[String(l)] = (2 * (both.get(l) ?? 0)) / ((inModel.get(l) ?? 0) + (inCorrected.get(l) ?? 0));
  const values = Object.values(perLabel);
  return { perLabel, mean: values.length ? values.reduce((s, v) => s + v, 0) / values.length : null };
}
