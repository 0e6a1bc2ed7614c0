/**
 * What a job gives beside its label map when the submission asks: the
 * uncertainty of `medseg predict --uncertainty` (normalised entropy and
 * mutual-information maps, the case's triage score and review flag) and a
 * Grad-CAM or Grad-CAM++ heat map of `medseg explain` with its PNG overlay
 * (image, predicted-mask outline and heat on the slice with the most mask; no
 * faithfulness checks: they multiply the time). The wish travels in the
 * job's inputRef, so a worker on any host sees it; the maps are NIfTI files
 * beside the result, named with its job-and-attempt prefix (the orphan sweep
 * keeps them with it), and the summary goes into the job's output record.
 */
import type { Job } from './store/jobs.ts';

/** Explanation methods a job may ask for: the gradient ones, a few network passes each. Occlusion and integrated gradients take minutes per case: `medseg explain`. */
export const JOB_EXPLAIN_METHODS = ['gradcam', 'gradcampp'] as const;
export type JobExplainMethod = (typeof JOB_EXPLAIN_METHODS)[number];

export interface JobExtras {
  uncertainty?: true;
  explain?: JobExplainMethod;
}

/** The map files a job may have, by the name GET /jobs/:id/maps/:name takes (the overlay is a PNG, the others NIfTI). */
export const JOB_MAPS = ['entropy', 'mutual-information', 'heatmap', 'overlay'] as const;
export type JobMapName = (typeof JOB_MAPS)[number];

/** A map's file ending and media type. */
export function jobMapFile(name: JobMapName): { ending: string; type: string } {
  return name === 'overlay' ? { ending: '.png', type: 'image/png' } : { ending: '.nii.gz', type: 'application/gzip' };
}

/** The case's uncertainty as the job reports it (GET /jobs/:id). */
export interface JobUncertainty {
  /** The number the review threshold applies to (mean normalised predictive entropy over the prediction and its uncertain rim). */
  score: number;
  flagged: boolean | null;
  threshold: number | null;
  members: number;
  sources: string[];
  temperature: number;
  /** Why there is no flag although the model has a review rule. */
  note?: string;
}

export interface JobExplanation {
  method: JobExplainMethod;
  classIndex: number;
  layer: string | null;
  /** Share of the positive heat inside the predicted mask (on the network's grid). */
  massInRegion: number;
}

/** The extras part of a done job's output record. */
export interface JobExtrasOutput {
  uncertainty?: JobUncertainty;
  explanation?: JobExplanation;
  /** Files of the maps, relative to the files folder. */
  maps?: Partial<Record<JobMapName, string>>;
}

/** A bad extras field of a submission (400). */
export class JobExtrasError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobExtrasError';
  }
}

/** The extras a submission asks for: multipart fields are the strings 'true'/'false' and a method name; JSON members a boolean and a method name. */
export function parseJobExtras(uncertainty: unknown, explain: unknown): JobExtras {
  const out: JobExtras = {};
  if (uncertainty !== undefined) {
    if (uncertainty === true || uncertainty === 'true') out.uncertainty = true;
    else if (uncertainty !== false && uncertainty !== 'false') {
      throw new JobExtrasError(`"uncertainty" must be true or false (got ${JSON.stringify(String(uncertainty).slice(0, 40))})`);
    }
  }
  if (explain !== undefined && explain !== '' && explain !== 'none') {
    if (typeof explain !== 'string' || !(JOB_EXPLAIN_METHODS as readonly string[]).includes(explain)) {
      throw new JobExtrasError(
        `"explain" must be one of ${JOB_EXPLAIN_METHODS.join(', ')} or none (got ${JSON.stringify(String(explain).slice(0, 40))}); occlusion and integrated gradients: run medseg explain`,
      );
    }
    out.explain = explain as JobExplainMethod;
  }
  return out;
}

/** inputRef with the extras added (unchanged when none are asked for). */
export function withExtras(inputRef: string | null | undefined, extras: JobExtras): string | null {
  if (!extras.uncertainty && !extras.explain) return inputRef ?? null;
  const ref = inputRef ? (JSON.parse(inputRef) as Record<string, unknown>) : {};
  return JSON.stringify({ ...ref, extras });
}

/** The extras a job asked for. */
export function jobExtras(job: Pick<Job, 'inputRef'>): JobExtras {
  if (!job.inputRef) return {};
  try {
    const e = (JSON.parse(job.inputRef) as { extras?: JobExtras }).extras;
    return e ? parseJobExtras(e.uncertainty, e.explain) : {};
  } catch {
    return {};
  }
}

/** The file of a job attempt's map: results/<id>.a<attempt>.<name>.nii.gz (.png for the overlay). */
export function jobMapPath(jobId: string, attempt: number, name: JobMapName): string {
  return `results/${jobId}.a${attempt}.${name}${jobMapFile(name).ending}`;
}

/** The extras of a job's output record (none for a job without). */
export function outputExtras(output: string | null): JobExtrasOutput {
  if (!output) return {};
  try {
    const o = JSON.parse(output) as JobExtrasOutput;
    return {
      ...(o.uncertainty ? { uncertainty: o.uncertainty } : {}),
      ...(o.explanation ? { explanation: o.explanation } : {}),
      ...(o.maps ? { maps: o.maps } : {}),
    };
  } catch {
    return {};
  }
}
