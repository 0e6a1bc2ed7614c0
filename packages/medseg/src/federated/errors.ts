/**
 * The federation's one error type. The coordinator answers every refused
 * request with its HTTP status and a JSON body {statusCode, code, message};
 * a site client turns such an answer back into the same error, so both sides
 * test `code` rather than parse messages.
 */

/** Why a request was refused, with the HTTP status the coordinator answers it with. */
export const FEDERATION_ERRORS = {
  /** No site name or key, or a key that is not the site's. */
  UNAUTHORIZED: 401,
  /** A site update for a round that has already been aggregated (a late update). */
  ROUND_CLOSED: 409,
  /** A request for a round that has not started. */
  ROUND_NOT_OPEN: 409,
  /** A second update from one site in one round. */
  DUPLICATE_UPDATE: 409,
  /** A secure-aggregation step out of turn (the round's sites are not fixed yet, or the site is not one of them). */
  NOT_IN_ROUND: 409,
  /** The federation has run all its rounds. */
  FINISHED: 410,
  /** Weights that are not a valid safetensors body. */
  BAD_WEIGHTS: 400,
  /** A safetensors body cut short. */
  TRUNCATED_WEIGHTS: 400,
  /** Tensors missing, extra, of another shape or dtype than the global model's. */
  WRONG_TENSORS: 400,
  /** NaN or infinite values in an update. */
  NOT_FINITE: 400,
  /** Any other malformed request (metadata, parameters). */
  BAD_REQUEST: 400,
  /** A body larger than the model's update can be. */
  TOO_LARGE: 413,
  /** The coordinator could not be reached or answered with something that is not the protocol. */
  UNREACHABLE: 503,
} as const;

export type FederationErrorCode = keyof typeof FEDERATION_ERRORS;

export class FederationError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: FederationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FederationError';
    this.statusCode = FEDERATION_ERRORS[code];
  }
}
