/**
 * The DICOM SEG a job hands back to the PACS: the label map on the source
 * series' grid, one segment per foreground label of the model's plan. Its
 * series and instance UIDs are derived from the job id, so a job that is
 * tried again after its worker died stores the same instance again (the
 * PACS keeps one) rather than a second segmentation of the same series.
 */
import { createHash } from 'node:crypto';
import { buildDicomSeg, type SegmentDescription } from '@medseg/medseg/io/dicom/seg-write';
import { writeDicom, el } from '@medseg/medseg/io/dicom/write';
import { T } from '@medseg/medseg/io/dicom/dictionary';
import type { Volume } from '@medseg/medseg/io/volume';
import type { Plan } from '@medseg/medseg/plan/types';

/** A UID of the 2.25 form (PS3.5 B.2) from a name-based UUID (RFC 9562 version 5 layout, SHA-256 here) of `name`. */
export function nameUid(name: string): string {
  const h = createHash('sha256').update(name).digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${h.toString('hex')}`).toString()}`;
}

/** The segments of a plan's foreground labels. */
export function planSegments(plan: Plan): SegmentDescription[] {
  return Object.entries(plan.labels)
    .filter(([k]) => Number(k) > 0)
    .map(([k, name]) => ({
      number: Number(k),
      label: String(name),
      algorithmType: 'AUTOMATIC' as const,
      algorithmName: `medseg ${plan.network.architecture}`,
    }));
}

export interface JobSeg {
  bytes: Uint8Array;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

/** The SEG of a job's label map on its source series (read through readDicomSeries*). */
export function jobSeg(jobId: string, labels: Volume, source: Volume, plan: Plan, model: { id: string; version: string }): JobSeg {
  const ds = buildDicomSeg(labels, source, planSegments(plan), {
    seriesDescription: `medseg ${model.id} ${model.version}`.slice(0, 64),
    contentLabel: 'MEDSEG',
  });
  const sopInstanceUid = nameUid(`medseg job ${jobId} SEG instance`);
  const seriesInstanceUid = nameUid(`medseg job ${jobId} SEG series`);
  ds.set(el.str(T.SOPInstanceUID, 'UI', sopInstanceUid));
  ds.set(el.str(T.SeriesInstanceUID, 'UI', seriesInstanceUid));
  return { bytes: writeDicom(ds), sopInstanceUid, seriesInstanceUid };
}
