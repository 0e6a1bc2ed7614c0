/**
 * The medseg service's API as the viewer uses it: the models it offers, a
 * scan segmented there (submitted, followed to the end with its progress,
 * its label map fetched), and a corrected mask saved back as a correction of
 * that job. The key is sent as a Bearer token and kept only in the page.
 */

export interface ServiceModel {
  id: string;
  dataset: string;
  dims: string;
  architecture: string;
  channels: string[];
  labels: Record<string, string>;
  version: string;
  card: Record<string, unknown> | null;
}

export interface ServiceCorrection {
  id: string;
  jobId: string;
  modelVersion: string;
  author: string | null;
  at: string;
  dice: { perLabel: Record<string, number>; mean: number | null };
}

/** A request the service refused or could not answer; the message is the service's. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A done job's uncertainty summary (GET /jobs/:id), as the service's job-extras.ts reports it. */
export interface ServiceUncertainty {
  score: number;
  flagged: boolean | null;
  threshold: number | null;
  members: number;
  sources: string[];
  temperature: number;
  note?: string;
}

export interface ServiceExplanation {
  method: string;
  classIndex: number;
  layer: string | null;
  massInRegion: number;
}

/** What a job gave: its label map, and the maps and summaries the submission asked for. */
export interface ServiceResult {
  jobId: string;
  result: File;
  uncertainty: ServiceUncertainty | null;
  explanation: ServiceExplanation | null;
  /** Map files by name (entropy, mutual-information, heatmap). */
  maps: Record<string, File>;
}

export class ServiceCancelled extends Error {
  override readonly name = 'ServiceCancelled';
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new ServiceCancelled('cancelled'));
    });
  });

export class ServiceClient {
  /** `base`: the service's URL ('' for the server that serves this page). */
  constructor(
    private readonly base: string,
    private readonly key: string,
  ) {}

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base.replace(/\/+$/, '')}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${this.key}` } });
    } catch (e) {
      if (init.signal?.aborted) throw new ServiceCancelled('cancelled');
      throw new ServiceError(`the service at ${this.base || 'this server'} did not answer (${(e as Error).message})`, 0);
    }
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { message?: string } | null;
      throw new ServiceError(body?.message ?? `${res.status} ${res.statusText}`, res.status);
    }
    return res;
  }

  async models(): Promise<ServiceModel[]> {
    return ((await (await this.request('/models')).json()) as { models: ServiceModel[] }).models;
  }

  /**
   * Segments `file` with `model` on the service: submits it, polls the job
   * (onProgress with 0..1) until it is done, and returns the job id and its
   * label map file, with the uncertainty maps and summary (`uncertainty`) and
   * a heat map (`explain`) when asked for. Cancelling through `signal` also
   * cancels the job.
   */
  async segment(
    file: File,
    model: string,
    o: {
      uncertainty?: boolean;
      explain?: 'gradcam' | 'gradcampp';
      onProgress?: (fraction: number, state: string) => void;
      signal?: AbortSignal;
      pollMs?: number;
    } = {},
  ): Promise<ServiceResult> {
    const form = new FormData();
    form.append('model', model);
    if (o.uncertainty) form.append('uncertainty', 'true');
    if (o.explain) form.append('explain', o.explain);
    form.append('file', file, file.name);
    const job = (await (await this.request('/jobs', { method: 'POST', body: form, signal: o.signal })).json()) as { id: string };
    type JobView = {
      state: string;
      progress: number;
      error: string | null;
      uncertainty: ServiceUncertainty | null;
      explanation: ServiceExplanation | null;
      maps: Record<string, string>;
    };
    let done: JobView;
    try {
      for (;;) {
        const j = (await (await this.request(`/jobs/${job.id}`, { signal: o.signal })).json()) as JobView;
        o.onProgress?.(j.progress, j.state);
        done = j;
        if (j.state === 'done') break;
        if (j.state === 'failed' || j.state === 'cancelled') throw new ServiceError(`the job ${j.state}${j.error ? `: ${j.error}` : ''}`, 200);
        await sleep(o.pollMs ?? 300, o.signal);
      }
    } catch (e) {
      if (e instanceof ServiceCancelled) await this.request(`/jobs/${job.id}`, { method: 'DELETE' }).catch(() => undefined);
      throw e;
    }
    const maps: Record<string, File> = {};
    // The NIfTI maps the page shows (not the PNG overlay, made for reports).
    for (const [name, url] of Object.entries(done.maps ?? {})) if (name !== 'overlay') maps[name] = await this.file(url, `${job.id}_${name}.nii.gz`, o.signal);
    return {
      jobId: job.id,
      result: await this.file(`/jobs/${job.id}/result`, `${job.id}_seg.nii.gz`, o.signal),
      uncertainty: done.uncertainty ?? null,
      explanation: done.explanation ?? null,
      maps,
    };
  }

  /** A file the service sends, named as its content-disposition says (else `fallback`). */
  private async file(path: string, fallback: string, signal?: AbortSignal): Promise<File> {
    const res = await this.request(path, { signal });
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? fallback;
    return new File([await res.blob()], name);
  }

  /** Saves a corrected mask (a NIfTI file on the job's grid) as a correction of the job. */
  async saveCorrection(jobId: string, mask: Uint8Array, author: string): Promise<ServiceCorrection> {
    const form = new FormData();
    form.append('file', new Blob([mask as Uint8Array<ArrayBuffer>], { type: 'application/gzip' }), 'correction.nii.gz');
    if (author.trim()) form.append('author', author.trim());
    return (await (await this.request(`/jobs/${jobId}/corrections`, { method: 'POST', body: form })).json()) as ServiceCorrection;
  }
}
