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
   * label map file. Cancelling through `signal` also cancels the job.
   */
  async segment(
    file: File,
    model: string,
    o: { onProgress?: (fraction: number, state: string) => void; signal?: AbortSignal; pollMs?: number } = {},
  ): Promise<{ jobId: string; result: File }> {
    const form = new FormData();
    form.append('model', model);
    form.append('file', file, file.name);
    const job = (await (await this.request('/jobs', { method: 'POST', body: form, signal: o.signal })).json()) as { id: string };
    try {
      for (;;) {
        const j = (await (await this.request(`/jobs/${job.id}`, { signal: o.signal })).json()) as { state: string; progress: number; error: string | null };
        o.onProgress?.(j.progress, j.state);
        if (j.state === 'done') break;
        if (j.state === 'failed' || j.state === 'cancelled') throw new ServiceError(`the job ${j.state}${j.error ? `: ${j.error}` : ''}`, 200);
        await sleep(o.pollMs ?? 300, o.signal);
      }
    } catch (e) {
      if (e instanceof ServiceCancelled) await this.request(`/jobs/${job.id}`, { method: 'DELETE' }).catch(() => undefined);
      throw e;
    }
    const res = await this.request(`/jobs/${job.id}/result`, { signal: o.signal });
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${job.id}_seg.nii.gz`;
    return { jobId: job.id, result: new File([await res.blob()], name) };
  }

  /** Saves a corrected mask (a NIfTI file on the job's grid) as a correction of the job. */
  async saveCorrection(jobId: string, mask: Uint8Array, author: string): Promise<ServiceCorrection> {
    const form = new FormData();
    form.append('file', new Blob([mask as Uint8Array<ArrayBuffer>], { type: 'application/gzip' }), 'correction.nii.gz');
    if (author.trim()) form.append('author', author.trim());
    return (await (await this.request(`/jobs/${jobId}/corrections`, { method: 'POST', body: form })).json()) as ServiceCorrection;
  }
}
