/**
 * Building blocks shared by the SEG, RTSTRUCT and Secondary Capture writers:
 * the Patient and General Study module elements copied from the source, the
 * equipment elements of what medseg writes, UTF-8 text elements, code items,
 * the Algorithm Identification Macro, the source instances and frames a
 * result references, default colours.
 */
import type { Volume } from '../volume.ts';

/** What result objects take from their source: its grid size and DICOM references. */
type Source = Pick<Volume, 'size' | 'meta'>;
import type { DicomDataset, DicomElement } from './dataset.ts';
import { T } from './dictionary.ts';
import { R } from './result-tags.ts';
import type { Code } from './seg-read.ts';
import { newUid } from './uid.ts';
import { dataset, el } from './write.ts';

/** CID 7162 "Artificial Intelligence": the family of a trained network. */
export const AI_ALGORITHM_FAMILY: Code = { value: '123110', scheme: 'DCM', meaning: 'Artificial Intelligence' };
/** Display colours of segments / ROIs given none, in turn. */
export const DEFAULT_COLOURS: [number, number, number][] = [
  [221, 130, 101],
  [128, 174, 128],
  [241, 214, 145],
  [177, 122, 101],
  [111, 184, 210],
  [216, 101, 79],
  [183, 156, 220],
  [252, 231, 140],
];

/** A text element in UTF-8 (the written SpecificCharacterSet is ISO_IR 192). */
export function text(tag: number, vr: string, value: string): DicomElement {
  return el.str(tag, vr, value, true);
}

export function codeItem(c: Code): DicomDataset {
  return dataset(el.str(T.CodeValue, 'SH', c.value), el.str(T.CodingSchemeDesignator, 'SH', c.scheme), text(T.CodeMeaning, 'LO', c.meaning));
}

/** The Algorithm Identification Macro (PS3.3 Table 10-19): family, name, version. */
export function algorithmIdentification(family: Code, name: string, version: string): DicomDataset {
  return dataset(
    el.seq(R.AlgorithmFamilyCodeSequence, [codeItem(family)]),
    text(R.AlgorithmVersion, 'LO', version.slice(0, 64)),
    text(R.AlgorithmName, 'LO', name.slice(0, 64)),
  );
}

/** One item per distinct source instance (a multi-frame source is one instance), in slice order. */
export function distinctInstances(sops: string[]): string[] {
  return [...new Set(sops)];
}

/** Each source slice's frame number within its instance when the source has multi-frame instances, else undefined. */
export function sourceFrameNumbers(source: Source): number[] | undefined {
  const f = source.meta.extra?.frameNumbers;
  return Array.isArray(f) && f.length === source.size[2] ? (f as number[]) : undefined;
}

const STUDY_DESCRIPTION = 0x00081030;

/** The source's patient / study attributes as readDicomSeries keeps them (meta.extra.dicom). */
function sourceDicom(source: Source): Record<string, string> {
  return (source.meta.extra?.dicom ?? {}) as Record<string, string>;
}

/** The source's Study Instance UID, if it has one. */
export function sourceStudyUid(source: Source): string | undefined {
  return source.meta.studyInstanceUID ?? sourceDicom(source).StudyInstanceUID;
}

/** The source's Frame of Reference UID, if it has one. */
export function sourceFrameOfReference(source: Source): string | undefined {
  return source.meta.frameOfReferenceUID ?? sourceDicom(source).FrameOfReferenceUID;
}

/** The SOP Class UID of the source's instances (CT Image Storage when unknown). */
export function sourceSopClass(source: Source): string {
  return sourceDicom(source).SOPClassUID ?? source.meta.sopClassUID ?? '1.2.840.10008.5.1.4.1.1.2';
}

/**
 * The Patient and General Study module elements of a result object, copied
 * from its source: a derived object belongs to the source's patient and
 * study. Type 2 attributes are present, empty when the source lacks them;
 * Study Description and Patient's Age only when the source has them. Text is
 * written as UTF-8 (the result's SpecificCharacterSet is ISO_IR 192) whatever
 * the source's character set was, since the reader has decoded it. A source
 * without a Study Instance UID gets `studyUid` (default: a new one).
 */
export function studyElements(source: Source, studyUid?: string): DicomElement[] {
  const dicom = sourceDicom(source);
  const copied = (tag: number, vr: string, v: string | undefined) => text(tag, vr, v ?? '');
  const out: (DicomElement | undefined)[] = [
    copied(T.PatientName, 'PN', source.meta.patientName ?? dicom.PatientName),
    copied(T.PatientID, 'LO', source.meta.patientId ?? dicom.PatientID),
    copied(T.PatientBirthDate, 'DA', dicom.PatientBirthDate),
    copied(T.PatientSex, 'CS', dicom.PatientSex),
    dicom.PatientAge !== undefined ? el.str(T.PatientAge, 'AS', dicom.PatientAge) : undefined,
    el.str(T.StudyInstanceUID, 'UI', sourceStudyUid(source) ?? studyUid ?? newUid()),
    copied(T.StudyDate, 'DA', dicom.StudyDate),
    copied(T.StudyTime, 'TM', dicom.StudyTime),
    copied(T.ReferringPhysicianName, 'PN', dicom.ReferringPhysicianName),
    copied(T.StudyID, 'SH', dicom.StudyID),
    copied(T.AccessionNumber, 'SH', dicom.AccessionNumber),
    dicom.StudyDescription !== undefined ? text(STUDY_DESCRIPTION, 'LO', dicom.StudyDescription) : undefined,
  ];
  return out.filter((e): e is DicomElement => e !== undefined);
}

/** The General (and, with a device serial number, Enhanced General) Equipment elements of what medseg writes. */
export function equipmentElements(o: { manufacturer?: string; softwareVersions: string; deviceSerialNumber?: string }): DicomElement[] {
  const out: (DicomElement | undefined)[] = [
    text(T.Manufacturer, 'LO', o.manufacturer ?? 'medseg'),
    el.str(T.ManufacturerModelName, 'LO', 'medseg'),
    o.deviceSerialNumber !== undefined ? el.str(T.DeviceSerialNumber, 'LO', o.deviceSerialNumber) : undefined,
    text(T.SoftwareVersions, 'LO', o.softwareVersions),
  ];
  return out.filter((e): e is DicomElement => e !== undefined);
}
