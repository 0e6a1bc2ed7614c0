/**
 * Test helper: small synthetic single-frame CT slices written with our own
 * writer, for the cases no real file covers (missing slices, mixed
 * orientations, two series, absurd sizes).
 */
import { T } from '../io/dicom/dictionary.ts';
import { dataset, el, writeDicom } from '../io/dicom/write.ts';

export interface SynthSlice {
  z: number;
  series?: string;
  iop?: number[];
  rows?: number;
  columns?: number;
  instance?: number;
  /** Declared NumberOfFrames (to test limits); pixel data stays one frame. */
  frames?: number;
  noPixels?: boolean;
  sop?: string;
}

export function synthSlice(s: SynthSlice): Uint8Array {
  const rows = s.rows ?? 4;
  const cols = s.columns ?? 5;
  const px = new Int16Array(s.noPixels ? 0 : Math.min(rows * cols, 1 << 16));
  for (let i = 0; i < px.length; i++) px[i] = ((i * 7 + Math.round(s.z * 10)) % 300) - 100;
  const ds = dataset(
    el.str(T.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
    el.str(T.SOPInstanceUID, 'UI', s.sop ?? `1.2.3.4.${Math.round(s.z * 100) + 100000}.${s.series ?? '1'}`),
    el.str(T.Modality, 'CS', 'CT'),
    el.str(T.PatientID, 'LO', 'SYNTH'),
    el.str(T.StudyInstanceUID, 'UI', '1.2.3.1'),
    el.str(T.SeriesInstanceUID, 'UI', `1.2.3.2.${s.series ?? '1'}`),
    el.str(T.FrameOfReferenceUID, 'UI', '1.2.3.3'),
    el.nums(T.InstanceNumber, 'IS', [s.instance ?? Math.round(s.z)]),
    el.nums(T.ImagePositionPatient, 'DS', [0, 0, s.z]),
    el.nums(T.ImageOrientationPatient, 'DS', s.iop ?? [1, 0, 0, 0, 1, 0]),
    el.nums(T.PixelSpacing, 'DS', [0.5, 0.75]),
    el.nums(T.SamplesPerPixel, 'US', [1]),
    el.str(T.PhotometricInterpretation, 'CS', 'MONOCHROME2'),
    el.nums(T.Rows, 'US', [rows]),
    el.nums(T.Columns, 'US', [cols]),
    s.frames !== undefined ? el.nums(T.NumberOfFrames, 'IS', [s.frames]) : undefined,
    el.nums(T.BitsAllocated, 'US', [16]),
    el.nums(T.BitsStored, 'US', [16]),
    el.nums(T.HighBit, 'US', [15]),
    el.nums(T.PixelRepresentation, 'US', [1]),
    el.nums(T.RescaleIntercept, 'DS', [0]),
    el.nums(T.RescaleSlope, 'DS', [1]),
    s.noPixels ? undefined : el.bytes(T.PixelData, 'OW', new Uint8Array(px.buffer)),
  );
  return writeDicom(ds);
}
