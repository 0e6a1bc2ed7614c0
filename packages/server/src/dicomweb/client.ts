/**
 * A DICOMweb client (PS3.18): QIDO-RS searches for studies, series and
 * instances (DICOM JSON answers), WADO-RS retrieval of a series or an
 * instance (multipart/related Part 10 files), and STOW-RS storage. Requests
 * go through Node's fetch; every one has a timeout, follows no redirect
 * (the configured server is the only one ever contacted), and reads at most
 * maxBytes of the answer. Failures throw the PacsError classes of errors.ts.
 */
import { isValidUid } from '@medseg/medseg/io/dicom/uid';
import { PacsError, PacsMalformedError, PacsStatusError, PacsStoreError, PacsTooLargeError, PacsUnreachableError } from './errors.ts';
import { boundaryOf, buildMultipart, parseMediaType, parseMultipart } from './multipart.ts';

/** One DICOM JSON dataset (PS3.18 F.2): attributes by 8-hex-digit tag. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] } | undefined>;

/** The first value of an attribute of a DICOM JSON dataset, when it is a string or a number. */
export function jsonValue(ds: DicomJson, tag: string): string | number | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' || typeof v === 'number' ? v : undefined;
}

export interface DicomwebClientOptions {
  /** Base URL of the service, e.g. http://pacs:8042/dicom-web (the studies resource is below it). */
  url: string;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Each request, answer included, must be over in this time (default 60 s). */
  timeoutMs?: number;
  /** Largest answer read, in bytes (default 1 GiB). */
  maxBytes?: number;
}

export interface StoredInstance {
  sopClassUid: string | undefined;
  sopInstanceUid: string;
  retrieveUrl: string | undefined;
}

const TAG = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  RetrieveURL: '00081190',
  FailureReason: '00081197',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
} as const;

export { TAG as DICOMWEB_TAGS };

/** Checks a UID before it becomes part of a URL path. */
function uid(what: string, v: string): string {
  if (!isValidUid(v)) throw new PacsError(`${what} ${JSON.stringify(v.slice(0, 80))} is not a DICOM UID (digits and dots, at most 64 characters)`);
  return v;
}

export class DicomwebClient {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(o: DicomwebClientOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.headers = o.headers ?? {};
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.maxBytes = o.maxBytes ?? 1024 ** 3;
  }

  /** QIDO-RS: studies matching the query (attribute keyword or tag = value, as PS3.18 8.3.4 allows). */
  async searchStudies(query: Record<string, string> = {}): Promise<DicomJson[]> {
    return this.search('/studies', query);
  }

  /** QIDO-RS: series of any study matching the query (each answer carries its StudyInstanceUID). */
  async searchAllSeries(query: Record<string, string> = {}): Promise<DicomJson[]> {
    return this.search('/series', query);
  }

  /** QIDO-RS: series of a study. */
  async searchSeries(studyUid: string, query: Record<string, string> = {}): Promise<DicomJson[]> {
    return this.search(`/studies/${uid('StudyInstanceUID', studyUid)}/series`, query);
  }

  /** QIDO-RS: instances of a series. */
  async searchInstances(studyUid: string, seriesUid: string, query: Record<string, string> = {}): Promise<DicomJson[]> {
    return this.search(`/studies/${uid('StudyInstanceUID', studyUid)}/series/${uid('SeriesInstanceUID', seriesUid)}/instances`, query);
  }

  /** WADO-RS: every instance of a series, as Part 10 files (in the transfer syntax the PACS holds them in). */
  async retrieveSeries(studyUid: string, seriesUid: string): Promise<Uint8Array[]> {
    return this.retrieve(`/studies/${uid('StudyInstanceUID', studyUid)}/series/${uid('SeriesInstanceUID', seriesUid)}`);
  }

  /** WADO-RS: one instance as a Part 10 file. */
  async retrieveInstance(studyUid: string, seriesUid: string, sopUid: string): Promise<Uint8Array> {
    const files = await this.retrieve(
      `/studies/${uid('StudyInstanceUID', studyUid)}/series/${uid('SeriesInstanceUID', seriesUid)}/instances/${uid('SOPInstanceUID', sopUid)}`,
    );
    if (files.length !== 1) throw new PacsMalformedError(`WADO-RS of instance ${sopUid} at ${this.url} answered ${files.length} parts, not 1`);
    return files[0]!;
  }

  /**
   * STOW-RS: stores Part 10 files (into the given study, when named: the
   * PACS then refuses instances of other studies). Throws PacsStoreError
   * when the PACS refuses any of them; returns what it stored.
   */
  async store(files: Uint8Array[], studyUid?: string): Promise<StoredInstance[]> {
    const path = studyUid === undefined ? '/studies' : `/studies/${uid('StudyInstanceUID', studyUid)}`;
    const { body, contentType } = buildMultipart(
      files.map((f) => ({ contentType: 'application/dicom', body: f })),
      'application/dicom',
    );
    const res = await this.request('POST', path, { accept: 'application/dicom+json', 'content-type': contentType }, body, [200, 202, 409]);
    const text = (await this.readBody(res, 'STOW-RS answer')).toString('utf8');
    let answer: DicomJson;
    try {
      answer = text.trim() === '' ? {} : (JSON.parse(text) as DicomJson);
    } catch {
      throw new PacsMalformedError(`STOW-RS at ${this.url} answered ${res.status} with a body that is not JSON`);
    }
    if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new PacsMalformedError(`STOW-RS at ${this.url} answered no DICOM JSON object`);
    const items = (tag: string) => (answer[tag]?.Value ?? []).filter((x): x is DicomJson => !!x && typeof x === 'object');
    const stored = items(TAG.ReferencedSOPSequence).map((it) => ({
      sopClassUid: jsonValue(it, TAG.ReferencedSOPClassUID) as string | undefined,
      sopInstanceUid: String(jsonValue(it, TAG.ReferencedSOPInstanceUID) ?? ''),
      retrieveUrl: jsonValue(it, TAG.RetrieveURL) as string | undefined,
    }));
    const failed = items(TAG.FailedSOPSequence).map((it) => {
      const reason = jsonValue(it, TAG.FailureReason);
      return { sopInstanceUid: String(jsonValue(it, TAG.ReferencedSOPInstanceUID) ?? ''), reason: typeof reason === 'number' ? reason : undefined };
    });
    if (failed.length || res.status === 409) {
      const list = failed.map((f) => `${f.sopInstanceUid || '(unknown)'} (reason ${f.reason === undefined ? 'not given' : `0x${f.reason.toString(16)}`})`);
      throw new PacsStoreError(
        `the PACS at ${this.url} refused ${failed.length || files.length} of ${files.length} instances${list.length ? `: ${list.join(', ')}` : ''}`,
        failed,
      );
    }
    if (stored.length !== files.length) {
      throw new PacsMalformedError(`STOW-RS at ${this.url} acknowledged ${stored.length} of ${files.length} instances and reported no failure`);
    }
    return stored;
  }

  private async search(path: string, query: Record<string, string>): Promise<DicomJson[]> {
    const qs = new URLSearchParams(query).toString();
    const res = await this.request('GET', `${path}${qs ? `?${qs}` : ''}`, { accept: 'application/dicom+json' }, undefined, [200, 204]);
    const body = await this.readBody(res, 'QIDO-RS answer');
    if (res.status === 204 || body.length === 0) return [];
    let list: unknown;
    try {
      list = JSON.parse(body.toString('utf8'));
    } catch {
      throw new PacsMalformedError(`QIDO-RS at ${this.url}${path} answered a body that is not JSON`);
    }
    if (!Array.isArray(list) || !list.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      throw new PacsMalformedError(`QIDO-RS at ${this.url}${path} answered JSON that is not an array of DICOM datasets`);
    }
    return list as DicomJson[];
  }

  private async retrieve(path: string): Promise<Uint8Array[]> {
    const res = await this.request('GET', path, { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }, undefined, [200]);
    const header = res.headers.get('content-type');
    if (!header) {
      await res.body?.cancel();
      throw new PacsMalformedError(`WADO-RS at ${this.url}${path} answered without a Content-Type`);
    }
    const mt = parseMediaType(header);
    if (mt.type !== 'multipart/related') {
      await res.body?.cancel();
      throw new PacsMalformedError(`WADO-RS at ${this.url}${path} answered ${mt.type}, not multipart/related`);
    }
    const boundary = boundaryOf(mt);
    const body = await this.readBody(res, 'WADO-RS answer');
    const parts = parseMultipart(body, boundary);
    parts.forEach((p, i) => {
      const ct = p.headers['content-type'];
      const partType = ct === undefined ? (mt.params.type ?? '').toLowerCase() : parseMediaType(ct).type;
      if (partType !== 'application/dicom')
        throw new PacsMalformedError(`WADO-RS part ${i + 1} at ${this.url}${path} is ${partType || 'untyped'}, not application/dicom`);
    });
    return parts.map((p) => p.body);
  }

  /** Sends one request; an answer whose status is not in `ok` throws PacsStatusError with the start of its body. */
  private async request(method: string, path: string, headers: Record<string, string>, body: Buffer | undefined, ok: number[]): Promise<Response> {
    const target = `${this.url}${path}`;
    let res: Response;
    try {
      res = await fetch(target, {
        method,
        headers: { ...this.headers, ...headers },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw unreachable(e, this.url, this.timeoutMs);
    }
    if (ok.includes(res.status)) return res;
    let detail = '';
    try {
      detail = (await this.readBody(res, 'error answer', 4096)).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 300);
    } catch {
      // the status says enough
    }
    throw new PacsStatusError(res.status, `${method} ${target} answered ${res.status} ${res.statusText}${detail ? `: ${detail}` : ''}`);
  }

  /** The whole answer body, refusing one over the limit (by its Content-Length, or while it streams in). */
  private async readBody(res: Response, what: string, max = this.maxBytes): Promise<Buffer> {
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      await res.body?.cancel();
      throw new PacsTooLargeError(`the ${what} from ${this.url} is ${declared} bytes, over the ${max}-byte limit`);
    }
    if (!res.body) return Buffer.alloc(0);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let n = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.byteLength;
        if (n > max) {
          await reader.cancel();
          throw new PacsTooLargeError(`the ${what} from ${this.url} is over the ${max}-byte limit`);
        }
        chunks.push(value);
      }
    } catch (e) {
      if (e instanceof PacsError) throw e;
      throw unreachable(e, this.url, this.timeoutMs);
    }
    return Buffer.concat(chunks, n);
  }
}

/** A PacsUnreachableError naming the cause fetch gives (ECONNREFUSED, a timeout, a refused redirect...). */
function unreachable(e: unknown, url: string, timeoutMs: number): PacsUnreachableError {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return new PacsUnreachableError(`the PACS at ${url} did not answer within ${timeoutMs} ms`);
  const cause = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
  return new PacsUnreachableError(`cannot reach the PACS at ${url}: ${cause}`);
}
