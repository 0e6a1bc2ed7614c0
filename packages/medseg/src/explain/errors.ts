/** The typed error of the explanation methods: a bad option or input, said plainly with what to do instead. */
export type ExplainErrorCode = 'BAD_OPTION' | 'NO_LAYER' | 'NOT_SUPPORTED';

export class MedsegExplainError extends Error {
  override readonly name = 'MedsegExplainError';
  constructor(
    readonly code: ExplainErrorCode,
    message: string,
  ) {
    super(message);
  }
}
