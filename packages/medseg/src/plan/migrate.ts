/**
 * Older plan files into the current schema. A plan of `medseg.plan/1` may
 * lack `training`, `inference` and `augmentation.transpose` (each then took a
 * default where it was read); version 2 completes them in the file. The
 * migration only renames the schema and leaves the rest to completePlan, so
 * a migrated plan gets exactly the defaults a version-1 reader derived.
 */
import { MedsegIoError } from '../io/errors.ts';
import { PLAN_SCHEMA } from './types.ts';

const MIGRATIONS: Record<string, (p: Record<string, unknown>) => Record<string, unknown>> = {
  'medseg.plan/1': (p) => ({ ...p, schema: 'medseg.plan/2' }),
};

/** The raw JSON of any known plan schema, as the current schema (not yet completed or validated). */
export function migratePlan(raw: unknown, path?: string): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  let p = raw as Record<string, unknown>;
  for (let guard = 0; p.schema !== PLAN_SCHEMA && guard < 10; guard++) {
    const step = MIGRATIONS[String(p.schema)];
    if (!step) {
      throw new MedsegIoError(
        'UNSUPPORTED',
        `plan schema ${JSON.stringify(p.schema)} is not one this medseg reads (${[...Object.keys(MIGRATIONS), PLAN_SCHEMA].join(', ')}); a newer medseg wrote it?`,
        path,
      );
    }
    p = step(p);
  }
  return p;
}
