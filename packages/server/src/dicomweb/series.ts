/**
 * A referenced series fetched from its PACS and read as a Volume: QIDO-RS
 * first (so that a wrong UID is told as such, not as an empty retrieve),
 * then WADO-RS, then the library's DICOM series reader on the files in
 * memory. A PACS that is unreachable or answers 5xx is tried again a few
 * times, with growing pauses, before the failure is final.
 */
import { readDicomSeriesFromBuffers } from '@medseg/medseg/io/dicom/series';
import type { Volume } from '@medseg/medseg/io/volume';
import type { DicomwebClient } from './client.ts';
import { PacsError, PacsNotFoundError, PacsStatusError } from './errors.ts';
import type { DicomwebRef } from './reference.ts';

export interface RetryOptions {
  /** Tries in all (default 3). */
  tries?: number;
  /** Pause before the second try; doubled before each next one (default 1 s). */
  firstPauseMs?: number;
}

/** Runs f, again after a pause while it throws a transient PacsError and tries remain. */
export async function withRetries<T>(f: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const tries = Math.max(1, o.tries ?? 3);
  let pause = o.firstPauseMs ?? 1000;
  for (let k = 1; ; k++) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof PacsError) || !e.transient || k >= tries) {
        if (e instanceof PacsError && e.transient && k > 1) e.message += ` (after ${k} tries)`;
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, pause));
    pause *= 2;
  }
}

/** The series' instances as Part 10 files; PacsNotFoundError when the PACS does not hold it. */
export async function fetchSeriesFiles(client: DicomwebClient, ref: DicomwebRef, retry: RetryOptions = {}): Promise<Uint8Array[]> {
  // Some servers answer a search below an unknown study with 404 rather than an empty list: both mean "not there".
  const found = await withRetries(() => client.searchInstances(ref.studyInstanceUid, ref.seriesInstanceUid), retry).catch((e: unknown) => {
    if (e instanceof PacsStatusError && e.status === 404) return [];
    throw e;
  });
  if (found.length === 0) {
    throw new PacsNotFoundError(
      `the PACS at ${client.url} holds no series ${ref.seriesInstanceUid} in study ${ref.studyInstanceUid} (QIDO-RS found no instance)`,
    );
  }
  const files = await withRetries(() => client.retrieveSeries(ref.studyInstanceUid, ref.seriesInstanceUid), retry);
  if (files.length === 0) throw new PacsNotFoundError(`WADO-RS of series ${ref.seriesInstanceUid} at ${client.url} gave no instance`);
  return files;
}

/** The series as a Volume (geometry, SOP instance UIDs per slice and patient/study attributes kept for the SEG). */
export async function fetchSeriesVolume(client: DicomwebClient, ref: DicomwebRef, o: { maxVoxelBytes: number; retry?: RetryOptions }): Promise<Volume> {
  const files = await fetchSeriesFiles(client, ref, o.retry);
  return readDicomSeriesFromBuffers(
    files.map((bytes, i) => ({ name: `series ${ref.seriesInstanceUid} instance ${i + 1}`, bytes })),
    { seriesInstanceUID: ref.seriesInstanceUid, limits: { maxBytes: o.maxVoxelBytes } },
  );
}
