/**
 * A prediction as DICOM results for a PACS or a planning system: the label
 * map as a BINARY SEG or an RT Structure Set, the class probabilities as a
 * FRACTIONAL (PROBABILITY) SEG. Segments are the plan's foreground labels,
 * named as in dataset.json and coded by the supplied codes file or the
 * default mapping (io/dicom/segment-codes.ts, with the dataset name as the
 * context for direction-only names); the algorithm is the model (its folder
 * name and architecture), AUTOMATIC, with medseg's version.
 */
import type { DeidentifyOptions } from '../io/dicom/deidentify.ts';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Volume, VoxelArray } from '../io/volume.ts';
import type { Plan } from '../plan/types.ts';
import type { SegmentCodeTable } from '../io/dicom/segment-codes.ts';

/** What the DICOM writers need beyond the prediction: the model's name and the user's codes. */
export interface DicomResultOptions {
  /** The model folder (its name identifies the algorithm). */
  modelDir?: string;
  /** Codes supplied by the user (--segment-codes), looked up before the default mapping. */
  segmentCodes?: SegmentCodeTable;
  /** De-identify each result as it is written (io/dicom/deidentify.ts; one state for a whole run keeps the UIDs consistent). */
  deidentify?: DeidentifyOptions;
}

let version: string | undefined;
function medsegVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
    } catch {
      version = '0.0.0';
    }
  }
  return version;
}

async function describeSegments(plan: Plan, o: DicomResultOptions) {
  const { segmentCodesFor } = await import('../io/dicom/segment-codes.ts');
  const model = o.modelDir ? basename(resolve(o.modelDir)) : plan.dataset;
  const algorithmName = `${model} (${plan.network.architecture})`.slice(0, 64);
  return Object.entries(plan.labels)
    .filter(([k]) => Number(k) > 0)
    .map(([k, name]) => {
      const number = Number(k);
      const c = segmentCodesFor(number, String(name), { table: o.segmentCodes, context: plan.dataset });
      return {
        number,
        label: c.label ?? String(name),
        rgb: c.rgb,
        category: c.category,
        type: c.type,
        typeModifier: c.modifier,
        algorithmType: 'AUTOMATIC' as const,
        algorithmName,
        algorithmVersion: medsegVersion(),
      };
    });
}

/** The label map as a BINARY DICOM SEG at `path`. */
export async function writeLabelSeg(path: string, labels: Volume, source: Volume, plan: Plan, o: DicomResultOptions = {}): Promise<void> {
  const { writeDicomSeg } = await import('../io/dicom/seg-write.ts');
  const segments = await describeSegments(plan, o);
  await writeDicomSeg(labels, source, segments, {
    path,
    seriesDescription: 'medseg segmentation',
    softwareVersions: medsegVersion(),
    deidentify: o.deidentify,
  });
}

/** The foreground classes' probabilities (planar channels of `probabilities`) as a FRACTIONAL SEG at `path`. */
export async function writeProbabilitySeg(path: string, probabilities: Volume, source: Volume, plan: Plan, o: DicomResultOptions = {}): Promise<void> {
  const { writeDicomSeg } = await import('../io/dicom/seg-write.ts');
  const segments = await describeSegments(plan, o);
  const n = source.size[0] * source.size[1] * source.size[2];
  const masks = new Map<number, VoxelArray>(
    segments.map((s): [number, VoxelArray] => [s.number, probabilities.data.subarray(s.number * n, (s.number + 1) * n)]),
  );
  await writeDicomSeg(masks, source, segments, {
    path,
    fractional: 'PROBABILITY',
    seriesDescription: 'medseg probabilities',
    contentLabel: 'PROBABILITIES',
    seriesNumber: 302,
    softwareVersions: medsegVersion(),
    deidentify: o.deidentify,
  });
}

/** The label map as an RT Structure Set at `path`. */
export async function writeLabelRtStruct(path: string, labels: Volume, source: Volume, plan: Plan, o: DicomResultOptions = {}): Promise<void> {
  const { writeRtStruct } = await import('../io/dicom/rtstruct-write.ts');
  const segments = await describeSegments(plan, o);
  const rois = segments.map((s) => ({
    number: s.number,
    name: s.label,
    rgb: s.rgb,
    code: s.type,
    interpretedType: s.category.value === '91723000' ? 'ORGAN' : undefined,
    algorithmType: s.algorithmType,
    algorithmName: s.algorithmName,
    algorithmVersion: s.algorithmVersion,
  }));
  await writeRtStruct(labels, source, rois, { path, seriesDescription: 'medseg structures', softwareVersions: medsegVersion(), deidentify: o.deidentify });
}
