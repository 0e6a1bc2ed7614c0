/**
 * DICOM SEG writer: seg-build.ts's Segmentation Storage object, optionally
 * de-identified, serialized as Part 10 bytes and written to a file.
 */
import type { DicomDataset } from './dataset.ts';
import { deidentifyDataset, type DeidentifyOptions } from './deidentify.ts';
import { buildSegDataset, type Masks, type SegBuildOptions, type SegmentDescription, type SegSource } from './seg-build.ts';
import { writeDicom } from './write.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';

export { DEFAULT_CATEGORY, DEFAULT_TYPE, type SegBuildOptions, type SegmentDescription, type SegSource } from './seg-build.ts';

export interface SegWriteOptions extends SegBuildOptions {
  /**
   * De-identify the written object (same options as deidentify). With the
   * `state` (or `uidSecret`) that de-identified the source series, the SEG's
   * references (study, series, instances, frame of reference) become the
   * source's new UIDs.
   */
  deidentify?: boolean | DeidentifyOptions;
  /** Also write the bytes to this path. */
  path?: string;
}

/** Builds the SEG dataset, de-identified when asked; writeDicomSeg serializes it. */
export function buildDicomSeg(masks: Masks, source: SegSource, segments: SegmentDescription[], opts: SegWriteOptions = {}): DicomDataset {
  const ds = buildSegDataset(masks, source, segments, opts);
  if (opts.deidentify) deidentifyDataset(ds, opts.deidentify === true ? {} : opts.deidentify);
  return ds;
}

/** Writes a DICOM SEG (Part 10 bytes; also to opts.path when given, atomically). */
export async function writeDicomSeg(masks: Masks, source: SegSource, segments: SegmentDescription[], opts: SegWriteOptions = {}): Promise<Uint8Array> {
  const bytes = writeDicom(buildDicomSeg(masks, source, segments, opts));
  if (opts.path) await writeFileAtomic(opts.path, bytes);
  return bytes;
}
