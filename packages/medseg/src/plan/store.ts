/** Reading and writing plan files: every loaded plan is migrated, completed and validated. */
import { readFileSync } from 'node:fs';
import { MedsegIoError } from '../io/errors.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { completePlan } from './complete.ts';
import { migratePlan } from './migrate.ts';
import type { Plan } from './types.ts';
import { validatePlan, validatePlanDraft } from './validate.ts';

/** A plan from its JSON value (any known schema): migrated, completed, validated. */
export function planFromJson(raw: unknown, path?: string): Plan {
  const draft = validatePlanDraft(migratePlan(raw, path), path);
  return validatePlan(completePlan(draft), path);
}

export function loadPlan(path: string): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MedsegIoError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'CORRUPT', `cannot read the plan (${(e as Error).message})`, path);
  }
  return planFromJson(raw, path);
}

/** Writes a complete plan atomically (a crash leaves the old file or the new one, never half of one). */
export async function savePlan(path: string, plan: Plan): Promise<void> {
  validatePlan(plan, path);
  await writeJsonAtomic(path, plan);
}
