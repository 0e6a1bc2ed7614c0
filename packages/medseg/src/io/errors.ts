/**
 * Every reader failure is a MedsegIoError with a machine-readable code and the
 * file it concerns, so a CLI or server can report it and carry on.
 */
export type IoErrorCode =
  'NOT_FOUND' | 'TRUNCATED' | 'BAD_MAGIC' | 'TOO_LARGE' | 'BAD_GEOMETRY' | 'BAD_DATA' | 'UNSUPPORTED' | 'INCONSISTENT_SERIES' | 'MISSING_SLICES' | 'CORRUPT';

export class MedsegIoError extends Error {
  override readonly name = 'MedsegIoError';
  constructor(
    readonly code: IoErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}

/** Limits applied before allocating anything a header asks for. */
export interface ReadLimits {
  /** Largest decoded voxel buffer in bytes (default 2 GiB). */
  maxBytes: number;
  /** Largest decompressed size of a compressed file in bytes (default 4 GiB). */
  maxDecompressedBytes: number;
}

export const DEFAULT_LIMITS: ReadLimits = {
  maxBytes: 2 * 1024 ** 3,
  maxDecompressedBytes: 4 * 1024 ** 3,
};
