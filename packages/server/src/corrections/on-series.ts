/**
 * Corrections of DICOM jobs, on the grid of the job's source series (as
 * readDicomSeries stacks it, which is the grid the job's SEG was written on):
 * the series itself (the uploaded zip, or fetched again from the PACS), the
 * job's result SEG as labels, and a correction as labels — sent either as a
 * DICOM SEG of the series (what OHIF, 3D Slicer or the viewer's "Save mask
 * (DICOM SEG)" write) or as a label map on any grid that holds the series'
 * voxels in another order (the viewer's NIfTI of the series, made by
 * dcm2niix).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MedsegIoError } from '@medseg/medseg/io/errors';
import { parseDicomSeg, segLabelmap } from '@medseg/medseg/io/dicom/seg-read';
import { labelsOnGrid } from '@medseg/medseg/io/same-voxels';
import type { Volume } from '@medseg/medseg/io/volume';
import { DicomwebClient } from '../dicomweb/client.ts';
import { normaliseUrl, type DicomwebRef } from '../dicomweb/reference.ts';
import { fetchSeriesVolume } from '../dicomweb/series.ts';
import type { DicomwebServer } from '../config.ts';
import type { Job } from '../store/jobs.ts';
import { readDicomZip } from '../upload/dicom-zip.ts';
import type { ReceiveLimits } from '../upload/receive.ts';

/** Job input formats whose result is a SEG on a DICOM series. */
export const DICOM_JOB_FORMATS = new Set(['dicom-zip', 'dicomweb']);

/** A correction the service cannot take, with its HTTP status and code. */
export class CorrectionError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface SeriesAccess {
  filesDir: string;
  limits: ReceiveLimits;
  /** The PACS the service may fetch from (a dicomweb job's series is fetched again). */
  pacs?: { servers: DicomwebServer[]; timeoutMs: number; maxBytes: number };
}

/** The source series of a DICOM job, on the grid its SEG was written on. */
export async function jobSeries(job: Job, o: SeriesAccess): Promise<Volume> {
  if (job.inputFormat === 'dicom-zip') {
    const series = job.inputRef ? (JSON.parse(job.inputRef) as { seriesInstanceUid?: string }).seriesInstanceUid : undefined;
    return readDicomZip(join(o.filesDir, job.inputPath), {
      maxDecompressedBytes: o.limits.maxDecompressedBytes,
      maxVoxelBytes: o.limits.maxVoxelBytes,
      seriesInstanceUid: series,
    });
  }
  const ref = JSON.parse(job.inputRef ?? '{}') as DicomwebRef;
  const server = o.pacs?.servers.find((s) => normaliseUrl(s.url) === ref.url);
  if (!o.pacs || !server) throw new CorrectionError(409, 'PACS_NOT_ALLOWED', `the PACS ${ref.url} of job ${job.id} is no longer configured here`);
  const client = new DicomwebClient({ url: server.url, headers: server.headers, timeoutMs: o.pacs.timeoutMs, maxBytes: o.pacs.maxBytes });
  return fetchSeriesVolume(client, ref, { maxVoxelBytes: o.limits.maxVoxelBytes });
}

/** True when the bytes are a DICOM Part 10 file (preamble and "DICM"). */
export function isPart10(head: Uint8Array): boolean {
  return head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 && head[131] === 0x4d;
}

/**
 * A SEG's segments as model labels on the series grid (x fastest): each
 * segment is the model label of the same name (SegmentLabel, any case), or
 * else the label of its segment number. Overlapping segments are refused (a
 * label map holds one label per voxel).
 */
export function segLabelsOnSeries(bytes: Uint8Array, source: Volume, labels: Record<string, string>, what: string): Uint8Array {
  let seg;
  let map;
  try {
    seg = parseDicomSeg(bytes, { path: what });
    map = segLabelmap(seg, source);
  } catch (e) {
    if (e instanceof MedsegIoError) throw new CorrectionError(422, e.code === 'BAD_GEOMETRY' ? 'WRONG_GRID' : 'BAD_SEG', `${what}: ${e.message}`);
    throw e;
  }
  const byName = new Map(Object.entries(labels).map(([v, name]) => [name.trim().toLowerCase(), Number(v)]));
  const valueOf = new Map<number, number>();
  for (const s of seg.segments) valueOf.set(s.number, byName.get(s.label.trim().toLowerCase()) ?? s.number);
  const data = map.labelmap.data as ArrayLike<number>;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v === 0) continue;
    const label = valueOf.get(v) ?? v;
    if (label > 255) throw new CorrectionError(422, 'BAD_LABELS', `${what}: segment ${v} is not a label of the model`);
    out[i] = label;
  }
  return out;
}

/** A label map on a grid holding the series' voxels (in any axis order), moved onto the series grid. */
export function volumeLabelsOnSeries(v: Volume, source: Volume): Uint8Array {
  if (v.channels !== 1) throw new CorrectionError(422, 'WRONG_GRID', `a label map has one channel, this file has ${v.channels}`);
  const data = v.data as ArrayLike<number>;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!(x >= 0 && x <= 255 && Number.isInteger(x))) throw new CorrectionError(422, 'BAD_LABELS', `value ${x} is not a label`);
  }
  try {
    return labelsOnGrid(data, v, source);
  } catch (e) {
    if (e instanceof MedsegIoError) throw new CorrectionError(422, 'WRONG_GRID', `the correction is not on the series' grid: ${e.message}`);
    throw e;
  }
}

/** The job's result SEG as labels on its series. */
export async function resultLabelsOnSeries(job: Job, source: Volume, labels: Record<string, string>, filesDir: string): Promise<Uint8Array> {
  return segLabelsOnSeries(await readFile(join(filesDir, job.resultPath!)), source, labels, `the result of job ${job.id}`);
}
