/**
 * The mask as a DICOM SEG of the series it was painted on, made in the page
 * (nothing leaves the machine): the series' headers, read by medseg's DICOM
 * parser without their pixel data, give its grid and the references a SEG
 * needs (study, frame of reference, the SOP instance of every slice); the
 * mask moves from the grid the page shows (dcm2niix's NIfTI of the series:
 * the same voxels, in another order) onto the series' grid by position; and
 * medseg's SEG builder writes one segment per label, coded by its name
 * (SNOMED CT where the name is known anatomy). Among several series in the
 * opened files, the one whose voxels the scan holds is used.
 */
import { buildSegDataset, type SegmentDescription } from '@medseg/medseg/io/dicom/seg-build';
import { defaultSegmentCodes } from '@medseg/medseg/io/dicom/segment-codes';
import { readSeriesGrids } from '@medseg/medseg/io/dicom/series-grid';
import { writeDicom } from '@medseg/medseg/io/dicom/write';
import { labelsOnGrid, voxelCorrespondence, type Grid } from '@medseg/medseg/io/same-voxels';
import { labelColor } from './label-colors.ts';

export interface SegSaveOptions {
  /** Label names by value (the model's); values without a name are called "label N". */
  labelNames: Record<string, string>;
  /** The model whose output was corrected: the segments are SEMIAUTOMATIC by it; without one they are MANUAL. */
  algorithm?: { name: string; version: string };
  /** Who made the correction (Content Creator's Name). */
  author?: string;
}

/** The SEG's bytes and the series it refers to. */
export interface SavedSeg {
  bytes: Uint8Array;
  seriesInstanceUID: string;
  segments: number;
}

/** The series among `files` whose grid holds the scan's voxels; an error lists what was found otherwise. */
async function seriesOfScan(files: File[], scan: Grid) {
  const buffers = await Promise.all(files.map(async (f) => ({ name: f.webkitRelativePath || f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
  const found = readSeriesGrids(buffers);
  const reasons: string[] = [];
  for (const s of found) {
    if (!s.grid) {
      reasons.push(`${s.seriesInstanceUID}: ${s.problem}`);
      continue;
    }
    try {
      voxelCorrespondence(scan, s.grid);
      return s.grid;
    } catch (e) {
      reasons.push(`${s.seriesInstanceUID} (${s.grid.size.join('x')}): ${(e as Error).message}`);
    }
  }
  throw new Error(
    found.length
      ? `no series among the ${files.length} file(s) holds the scan's ${scan.size.join('x')} voxels: ${reasons.join('; ')}`
      : `no DICOM image series among the ${files.length} file(s)`,
  );
}

/** Labels on the scan's grid (x fastest) as a SEG of the DICOM series in `files`. */
export async function maskAsDicomSeg(files: File[], labels: Uint8Array, scan: Grid, o: SegSaveOptions): Promise<SavedSeg> {
  const grid = await seriesOfScan(files, scan);
  const onSeries = labelsOnGrid(labels, scan, grid);
  const present = new Set<number>();
  for (const v of onSeries) if (v) present.add(v);
  const values = [...new Set([...Object.keys(o.labelNames).map(Number), ...present])].filter((v) => v > 0).sort((a, b) => a - b);
  if (!values.length) throw new Error('the mask has no labels to save');
  const segments: SegmentDescription[] = values.map((v) => {
    const label = o.labelNames[String(v)] ?? `label ${v}`;
    const codes = defaultSegmentCodes(label);
    return {
      number: v,
      label,
      rgb: labelColor(v),
      category: codes.category,
      type: codes.type,
      typeModifier: codes.modifier,
      algorithmType: o.algorithm ? 'SEMIAUTOMATIC' : 'MANUAL',
      algorithmName: o.algorithm?.name,
      algorithmVersion: o.algorithm?.version,
    };
  });
  const ds = buildSegDataset(
    { data: onSeries, size: grid.size, channels: 1, spacing: grid.spacing, origin: grid.origin, direction: grid.direction, meta: {} },
    grid,
    segments,
    {
      seriesDescription: o.algorithm ? `Corrected ${o.algorithm.name}`.slice(0, 64) : 'Manual segmentation',
      contentLabel: 'CORRECTION',
      contentCreatorName: o.author,
      manufacturer: 'medseg',
      softwareVersions: 'medseg viewer',
    },
  );
  return { bytes: writeDicom(ds), seriesInstanceUID: grid.meta.seriesInstanceUID ?? '', segments: segments.length };
}
