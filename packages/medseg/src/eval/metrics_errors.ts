/**
 * Metric failures are typed like reader failures (see io/errors.ts): a code a
 * CLI or report can switch on, and a message that says what to fix.
 */
export type MetricsErrorCode =
  | 'BAD_SHAPE' // arrays disagree with the grid size, or the size itself is invalid
  | 'BAD_SPACING' // spacing not finite and > 0
  | 'BAD_OPTION' // an option out of range (bins, tau, labels, ...)
  | 'BAD_VALUE'; // NaN / out-of-range probabilities

export class MetricsError extends Error {
  override readonly name = 'MetricsError';
  constructor(
    readonly code: MetricsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
