/**
 * What can go wrong talking to a PACS over DICOMweb, one class per cause so
 * that callers can tell a PACS that is down (worth a retry) from one that
 * refused the request or answered something unreadable (not worth one).
 * Messages name the server and say what happened; they never hold the
 * request's headers (which may carry credentials).
 */

/** Any failure of a DICOMweb exchange. */
export class PacsError extends Error {
  override readonly name: string = 'PacsError';
  /** True when trying again later may succeed (the PACS was unreachable, slow or answered 5xx/429). */
  readonly transient: boolean = false;
}

/** The PACS could not be reached (refused, reset, DNS, TLS) or did not answer in time. */
export class PacsUnreachableError extends PacsError {
  override readonly name = 'PacsUnreachableError';
  override readonly transient = true;
}

/** The PACS answered with an error status (4xx/5xx). */
export class PacsStatusError extends PacsError {
  override readonly name = 'PacsStatusError';
  override readonly transient: boolean;
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.transient = status >= 500 || status === 429;
  }
}

/** The answer does not have the form the standard prescribes (bad multipart, bad JSON, wrong media type). */
export class PacsMalformedError extends PacsError {
  override readonly name = 'PacsMalformedError';
}

/** The answer is larger than the limit set for it. */
export class PacsTooLargeError extends PacsError {
  override readonly name = 'PacsTooLargeError';
}

/** What was asked for is not on the PACS (a search found nothing, a retrieve gave no instance). */
export class PacsNotFoundError extends PacsError {
  override readonly name = 'PacsNotFoundError';
}

/** A STOW-RS store that the PACS refused for some or all instances. */
export class PacsStoreError extends PacsError {
  override readonly name = 'PacsStoreError';
  constructor(
    message: string,
    readonly failed: { sopInstanceUid: string; reason: number | undefined }[],
  ) {
    super(message);
  }
}
