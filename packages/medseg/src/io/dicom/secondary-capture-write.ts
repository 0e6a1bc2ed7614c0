/**
 * Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7): one RGB
 * instance per slice of a DICOM source series, as a new series of the
 * source's study. What any PACS viewer shows without plug-ins, so rendered
 * results (an explanation's heat map blended over the image) travel back to
 * the PACS with the study. Patient and study attributes are copied from the
 * source Volume's meta (studyElements); each
 * instance names its source slice in SourceImageSequence. The SC IOD has no
 * image plane, so Patient Orientation carries the row and column directions.
 */
import { MedsegIoError } from '../errors.ts';
import type { Volume } from '../volume.ts';
import { T, tagOf } from './dictionary.ts';
import { equipmentElements, sourceSopClass, sourceStudyUid, studyElements } from './result-elements.ts';
import { newUid } from './uid.ts';
import { dataset, el, writeDicom } from './write.ts';

export const SECONDARY_CAPTURE_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';

const CONVERSION_TYPE = tagOf(0x0008, 0x0064);
const DERIVATION_DESCRIPTION = tagOf(0x0008, 0x2111);
const PATIENT_ORIENTATION = tagOf(0x0020, 0x0020);
const LATERALITY = tagOf(0x0020, 0x0060);
const BURNED_IN_ANNOTATION = tagOf(0x0028, 0x0301);
const DATE_OF_SECONDARY_CAPTURE = tagOf(0x0018, 0x1012);
const TIME_OF_SECONDARY_CAPTURE = tagOf(0x0018, 0x1014);

/** One rendered slice: 8-bit RGB, pixel-interleaved, row 0 first. */
export interface RgbSlice {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export interface SecondaryCaptureOptions {
  seriesDescription?: string;
  seriesNumber?: number;
  /** How the pictures were made (Derivation Description). */
  derivationDescription?: string;
  manufacturer?: string;
  softwareVersions?: string;
}

/**
 * The patient-orientation letters of a direction (LPS): the axes with a
 * component above 0.25 in magnitude, largest first (PS3.3 C.7.6.1.1.1).
 */
export function orientationLetters(v: readonly number[]): string {
  const letters = [
    ['L', 'R'],
    ['P', 'A'],
    ['H', 'F'],
  ] as const;
  return [0, 1, 2]
    .filter((k) => Math.abs(v[k]!) > 0.25)
    .sort((a, b) => Math.abs(v[b]!) - Math.abs(v[a]!))
    .map((k) => letters[k]![v[k]! > 0 ? 0 : 1])
    .join('');
}

/** The instances (Part 10 bytes), in slice order, of one Secondary Capture series over `source`'s slices. */
export function buildSecondaryCaptureSeries(slices: readonly RgbSlice[], source: Volume, o: SecondaryCaptureOptions = {}): Uint8Array[] {
  const sops = source.meta.sopInstanceUIDs;
  const nz = source.size[2];
  if (!sops || sops.length !== nz) throw new MedsegIoError('BAD_DATA', 'source volume has no SOP instance UIDs per slice (read it with readDicomSeries)');
  if (slices.length !== nz) throw new MedsegIoError('BAD_GEOMETRY', `${slices.length} rendered slices for a source of ${nz}`);
  const sopClass = sourceSopClass(source);
  // One Study Instance UID for every instance, also for a source without one.
  const studyUid = sourceStudyUid(source) ?? newUid();
  const d = source.direction;
  const orientation = [orientationLetters([d[0]!, d[3]!, d[6]!]), orientationLetters([d[1]!, d[4]!, d[7]!])];
  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const seriesUid = newUid();
  return slices.map((s, z) => {
    if (s.width > 65535 || s.height > 65535 || s.rgb.length !== s.width * s.height * 3) {
      throw new MedsegIoError('BAD_GEOMETRY', `slice ${z}: ${s.rgb.length} bytes for ${s.width}x${s.height} RGB`);
    }
    // Pixel Data of odd length is padded to even, as Part 5 requires.
    const pixels = s.rgb.length % 2 === 0 ? s.rgb : Uint8Array.from([...s.rgb, 0]);
    const ds = dataset(
      el.str(T.SpecificCharacterSet, 'CS', 'ISO_IR 192'),
      el.str(T.ImageType, 'CS', ['DERIVED', 'SECONDARY']),
      el.str(T.SOPClassUID, 'UI', SECONDARY_CAPTURE_SOP_CLASS),
      el.str(T.SOPInstanceUID, 'UI', newUid()),
      el.str(T.ContentDate, 'DA', date),
      el.str(T.ContentTime, 'TM', time),
      el.str(T.Modality, 'CS', source.meta.modality && source.meta.modality !== 'unknown' ? source.meta.modality : 'OT'),
      el.str(CONVERSION_TYPE, 'CS', 'WSD'),
      ...studyElements(source, studyUid),
      ...equipmentElements({ manufacturer: o.manufacturer, softwareVersions: o.softwareVersions ?? '0.1.0' }),
      el.str(T.SeriesDescription, 'LO', o.seriesDescription ?? 'medseg rendering', true),
      el.str(DERIVATION_DESCRIPTION, 'ST', o.derivationDescription ?? 'rendered by medseg from the source slice'),
      el.seq(T.SourceImageSequence, [dataset(el.str(T.ReferencedSOPClassUID, 'UI', sopClass), el.str(T.ReferencedSOPInstanceUID, 'UI', sops[z]!))]),
      el.str(DATE_OF_SECONDARY_CAPTURE, 'DA', date),
      el.str(TIME_OF_SECONDARY_CAPTURE, 'TM', time),
      el.str(T.SeriesInstanceUID, 'UI', seriesUid),
      el.nums(T.SeriesNumber, 'IS', [o.seriesNumber ?? 301]),
      // Type 2C in General Series: empty, as the laterality of the rendering is not known here.
      el.str(LATERALITY, 'CS', ''),
      el.nums(T.InstanceNumber, 'IS', [z + 1]),
      el.str(PATIENT_ORIENTATION, 'CS', orientation),
      el.nums(T.SamplesPerPixel, 'US', [3]),
      el.str(T.PhotometricInterpretation, 'CS', 'RGB'),
      el.nums(T.PlanarConfiguration, 'US', [0]),
      el.nums(T.Rows, 'US', [s.height]),
      el.nums(T.Columns, 'US', [s.width]),
      el.nums(T.BitsAllocated, 'US', [8]),
      el.nums(T.BitsStored, 'US', [8]),
      el.nums(T.HighBit, 'US', [7]),
      el.nums(T.PixelRepresentation, 'US', [0]),
      el.str(BURNED_IN_ANNOTATION, 'CS', 'NO'),
      el.str(T.LossyImageCompression, 'CS', '00'),
      el.bytes(T.PixelData, 'OB', pixels),
    );
    return writeDicom(ds);
  });
}
