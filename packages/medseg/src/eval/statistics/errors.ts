/** The typed error of the statistics: bad rows, no data, models that share no cases. */
export class MedsegStatsError extends Error {
  override readonly name = 'MedsegStatsError';
  constructor(
    readonly code: 'BAD_INPUT' | 'NO_DATA' | 'UNPAIRED',
    message: string,
  ) {
    super(message);
  }
}
