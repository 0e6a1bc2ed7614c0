/**
 * Planning a dataset, the one way `medseg plan` and `medseg train` both do it:
 * fingerprint, plan with the step timer, complete, save. The same choices on
 * the same machine give the same plan (see data/planner.ts on timing). The
 * choices, their defaults and where a dataset's plan lives:
 * ./planning-choices.ts.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { computeFingerprint, type Fingerprint } from '../data/fingerprint.ts';
import { measureThroughput, type PlanOptions } from '../data/planner.ts';
import { MedsegIoError } from '../io/errors.ts';
import { savePlan } from '../plan/store.ts';
import type { Plan } from '../plan/types.ts';
import { DEFAULT_ARCHITECTURE, DEFAULT_MINUTES, storedPlanPath, type PlanningChoices } from './planning-choices.ts';
import { rememberedPassTimer, rememberedStepTimer } from './step-timer.ts';
import * as torch from '@medseg/torch';
import { MachineTimings } from '../util/machine-timings.ts';
import { planWithPrecision } from './precision-plan.ts';

export { DEFAULT_ARCHITECTURE, DEFAULT_MINUTES, datasetWorkDir, hasPlanningChoices, storedPlanPath, type PlanningChoices } from './planning-choices.ts';

/**
 * This machine's remembered timings (util/machine-timings.ts), keyed by the
 * engine build and its thread count; `recalibrate` measures anew.
 */
export function machineTimings(recalibrate = false): MachineTimings {
  return new MachineTimings({ engine: `libtorch ${torch.torchVersion}`, recalibrate });
}

/** The planner's options for a set of choices; measurements of the machine are remembered in `timings`. */
export function plannerOptions(c: PlanningChoices, timings: MachineTimings = machineTimings()): PlanOptions {
  const minutes = c.minutes ?? DEFAULT_MINUTES;
  if (!(Number.isFinite(minutes) && minutes >= 0)) throw new MedsegIoError('BAD_DATA', `minutes must be a number >= 0, got ${minutes}`);
  if (c.averageLr !== undefined && c.averageWeights === undefined)
    throw new MedsegIoError('BAD_DATA', 'the averaging learning rate (--average-lr) needs weight averaging (--average-weights <from>)');
  return {
    dims: c.dims,
    architecture: c.architecture ?? DEFAULT_ARCHITECTURE,
    budget: minutes > 0 ? { minutes } : undefined,
    stepTimer: rememberedStepTimer(timings),
    throughputMeter: async (dims, cores) =>
      (
        await timings.remember(`throughput ${JSON.stringify({ dims, cores })}`, async () => {
          const { clean, ...model } = await measureThroughput(dims, cores);
          return { value: model, clean: clean ?? false };
        })
      ).value,
    timingMemory: `each time is measured once on this machine and engine and remembered in ${timings.path} (medseg plan --recalibrate measures anew)`,
    training: { optimizer: c.optimizer, loss: c.loss, skeletonRecall: c.skeletonRecall, averageWeights: c.averageWeights, averageLr: c.averageLr },
  };
}

/** Creates the folder of `path` or says that it cannot, naming the option that picks another place. */
export function ensureWritableFolder(path: string, option: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new MedsegIoError(
      'BAD_DATA',
      `cannot write to ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): choose another place with ${option}`,
      path,
    );
  }
}

export interface PlanDatasetOptions {
  dataset: string | Dataset;
  choices?: PlanningChoices;
  /** A fingerprint already computed for this dataset. */
  fingerprint?: Fingerprint;
  /** Plan file to write: default storedPlanPath(dataset); null writes none. */
  out?: string | null;
  log?: (line: string) => void;
  /** Measure this machine anew instead of using remembered timings (and remember the new ones). */
  recalibrate?: boolean;
}

export interface PlanDatasetResult {
  plan: Plan;
  fingerprint: Fingerprint;
  /** The file written, or null. */
  path: string | null;
}

export async function planDataset(o: PlanDatasetOptions): Promise<PlanDatasetResult> {
  const log = o.log ?? (() => {});
  const ds = typeof o.dataset === 'string' ? readDataset(o.dataset) : o.dataset;
  const path = o.out === null ? null : resolve(o.out ?? storedPlanPath(ds.dir));
  // Fail before the slow part when the plan cannot be written.
  if (path) ensureWritableFolder(path, '--out');
  let fingerprint = o.fingerprint;
  if (!fingerprint) {
    log(`fingerprinting ${ds.training.length} cases ...`);
    fingerprint = await computeFingerprint(ds);
  }
  const timings = machineTimings(o.recalibrate);
  const options = plannerOptions(o.choices ?? {}, timings);
  if (options.budget) log(`timing this machine for a ${options.budget.minutes}-minute budget ...`);
  const plan = await planWithPrecision(fingerprint, { planner: options, choice: o.choices?.precision ?? 'auto', timePass: rememberedPassTimer(timings), log });
  if (path) await savePlan(path, plan);
  return { plan, fingerprint, path };
}

/** The stored plan of a dataset, if `medseg plan` wrote one. */
export function storedPlanExists(datasetDir: string): boolean {
  return existsSync(storedPlanPath(datasetDir));
}
