/**
 * Sends a job's FHIR Bundle to the configured FHIR server: checked against
 * the R4 schema first (an invalid bundle is a bug here, never sent), POSTed
 * as a transaction to the server's base URL, answered 2xx or reported.
 */
import { fhirBundleErrors } from './validate.ts';

export interface FhirServer {
  /** Base URL of the FHIR server (the transaction is POSTed to it). */
  url: string;
  /** Extra headers sent to it (e.g. Authorization). */
  headers?: Record<string, string>;
}

export class FhirPostError extends Error {
  override readonly name = 'FhirPostError';

  constructor(
    message: string,
    /** The server's HTTP status; undefined when it did not answer. */
    readonly status?: number,
  ) {
    super(message);
  }

  /** Whether trying again later may succeed: no answer, a timeout or throttling, a server-side failure. */
  get transient(): boolean {
    return this.status === undefined || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The bundle is not valid R4: a bug on this side, never sent. */
export class FhirBundleInvalid extends Error {
  override readonly name = 'FhirBundleInvalid';
}

export async function postFhirBundle(server: FhirServer, bundle: object, o: { timeoutMs: number }): Promise<{ status: number }> {
  const errors = fhirBundleErrors(bundle as { entry?: { resource?: unknown }[] });
  if (errors.length) throw new FhirBundleInvalid(`the FHIR bundle does not meet the R4 schema: ${errors.slice(0, 5).join('; ')}`);
  let res: Response;
  try {
    res = await fetch(server.url, {
      method: 'POST',
      headers: { ...server.headers, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify(bundle),
      signal: AbortSignal.timeout(o.timeoutMs),
      redirect: 'error',
    });
  } catch (e) {
    throw new FhirPostError(`the FHIR server ${server.url} did not answer: ${(e as Error).message}`);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new FhirPostError(`the FHIR server ${server.url} answered ${res.status} ${res.statusText}`, res.status);
  return { status: res.status };
}
