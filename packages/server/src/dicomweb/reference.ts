/**
 * A job's input as a DICOMweb reference: a series on one of the PACS the
 * service is configured with. The client names the series (study and series
 * UIDs) and at most picks which configured PACS; it never supplies a URL the
 * server would contact on its own say (no server-side request forgery).
 */
import { isValidUid } from '@medseg/medseg/io/dicom/uid';
import type { DicomwebServer } from '../config.ts';

/** The reference as stored with the job. */
export interface DicomwebRef {
  /** The configured server's URL (normalised: no trailing slash). */
  url: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

/** A reference the service refuses, with the HTTP status and a code for the client. */
export class DicomwebRefError extends Error {
  override readonly name = 'DicomwebRefError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A URL in the one form servers are compared in: parsed, no trailing slash. */
export function normaliseUrl(url: string): string {
  return new URL(url).href.replace(/\/+$/, '');
}

/** The configured server a URL names (undefined: the first one); throws DicomwebRefError when none matches. */
export function pickServer(servers: readonly DicomwebServer[], url: string | undefined): DicomwebServer {
  if (servers.length === 0)
    throw new DicomwebRefError(400, 'NO_PACS', 'this server has no DICOMweb PACS configured (setting "dicomweb"): upload the case instead');
  if (url === undefined) return servers[0]!;
  let wanted: string;
  try {
    wanted = normaliseUrl(url);
  } catch {
    throw new DicomwebRefError(400, 'PACS_NOT_ALLOWED', `dicomweb.url ${JSON.stringify(url.slice(0, 200))} is not a URL`);
  }
  const s = servers.find((x) => normaliseUrl(x.url) === wanted);
  if (!s) {
    throw new DicomwebRefError(
      400,
      'PACS_NOT_ALLOWED',
      `dicomweb.url ${JSON.stringify(url.slice(0, 200))} is not one of the PACS this server is configured with (${servers.map((x) => normaliseUrl(x.url)).join(', ')}); leave it out to use the first`,
    );
  }
  return s;
}

const KEYS = new Set(['url', 'studyInstanceUid', 'seriesInstanceUid']);

/** Checks the `dicomweb` member of a submission and resolves its server; throws DicomwebRefError (400) naming what is wrong. */
export function checkDicomwebRef(value: unknown, servers: readonly DicomwebServer[]): DicomwebRef {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new DicomwebRefError(400, 'BAD_DICOMWEB', '"dicomweb" must be an object { url?, studyInstanceUid, seriesInstanceUid }');
  }
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => !KEYS.has(k));
  if (extra.length) throw new DicomwebRefError(400, 'BAD_DICOMWEB', `unknown member(s) of "dicomweb": ${extra.join(', ')}`);
  for (const k of ['studyInstanceUid', 'seriesInstanceUid'] as const) {
    const u = v[k];
    if (typeof u !== 'string' || !isValidUid(u)) {
      throw new DicomwebRefError(
        400,
        'BAD_DICOMWEB',
        `dicomweb.${k} must be a DICOM UID (digits and dots, at most 64 characters), got ${JSON.stringify(u)?.slice(0, 80)}`,
      );
    }
  }
  if (v.url !== undefined && typeof v.url !== 'string') throw new DicomwebRefError(400, 'BAD_DICOMWEB', 'dicomweb.url must be a string');
  const server = pickServer(servers, v.url as string | undefined);
  return { url: normaliseUrl(server.url), studyInstanceUid: v.studyInstanceUid as string, seriesInstanceUid: v.seriesInstanceUid as string };
}
