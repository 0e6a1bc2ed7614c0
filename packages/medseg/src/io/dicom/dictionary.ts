/**
 * Tag numbers we use by name, and the VR lookup needed to read Implicit VR
 * files. The VR table comes from dcmjs's data dictionary (5000+ public tags):
 * it is the one thing dcmjs gives us that is tedious and error-prone to copy.
 */
import dcmjs from 'dcmjs';

export const tagOf = (group: number, element: number): number => ((group << 16) | element) >>> 0;

export const T = {
  TransferSyntaxUID: 0x00020010,
  MediaStorageSOPClassUID: 0x00020002,
  MediaStorageSOPInstanceUID: 0x00020003,
  ImplementationClassUID: 0x00020012,
  ImplementationVersionName: 0x00020013,
  FileMetaInformationVersion: 0x00020001,
  FileMetaInformationGroupLength: 0x00020000,
  SpecificCharacterSet: 0x00080005,
  ImageType: 0x00080008,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  SeriesDate: 0x00080021,
  ContentDate: 0x00080023,
  StudyTime: 0x00080030,
  SeriesTime: 0x00080031,
  ContentTime: 0x00080033,
  AccessionNumber: 0x00080050,
  Modality: 0x00080060,
  Manufacturer: 0x00080070,
  InstitutionName: 0x00080080,
  ReferringPhysicianName: 0x00080090,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  SeriesDescription: 0x0008103e,
  ManufacturerModelName: 0x00081090,
  ReferencedSeriesSequence: 0x00081115,
  ReferencedInstanceSequence: 0x0008114a,
  ReferencedSOPClassUID: 0x00081150,
  ReferencedSOPInstanceUID: 0x00081155,
  ReferencedFrameNumber: 0x00081160,
  SourceImageSequence: 0x00082112,
  DerivationImageSequence: 0x00089124,
  DerivationCodeSequence: 0x00089215,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  PatientAge: 0x00101010,
  PatientIdentityRemoved: 0x00120062,
  DeidentificationMethod: 0x00120063,
  DeidentificationMethodCodeSequence: 0x00120064,
  LongitudinalTemporalInformationModified: 0x00280303,
  SliceThickness: 0x00180050,
  SpacingBetweenSlices: 0x00180088,
  DeviceSerialNumber: 0x00181000,
  SoftwareVersions: 0x00181020,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  StudyID: 0x00200010,
  SeriesNumber: 0x00200011,
  InstanceNumber: 0x00200013,
  ImagePositionPatient: 0x00200032,
  ImageOrientationPatient: 0x00200037,
  FrameOfReferenceUID: 0x00200052,
  PositionReferenceIndicator: 0x00201040,
  DimensionOrganizationSequence: 0x00209221,
  DimensionOrganizationUID: 0x00209164,
  DimensionIndexSequence: 0x00209222,
  DimensionIndexPointer: 0x00209165,
  FunctionalGroupPointer: 0x00209167,
  DimensionDescriptionLabel: 0x00209421,
  FrameContentSequence: 0x00209111,
  DimensionIndexValues: 0x00209157,
  PlanePositionSequence: 0x00209113,
  PlaneOrientationSequence: 0x00209116,
  SamplesPerPixel: 0x00280002,
  PhotometricInterpretation: 0x00280004,
  NumberOfFrames: 0x00280008,
  Rows: 0x00280010,
  Columns: 0x00280011,
  PixelSpacing: 0x00280030,
  BitsAllocated: 0x00280100,
  BitsStored: 0x00280101,
  HighBit: 0x00280102,
  PixelRepresentation: 0x00280103,
  PixelPaddingValue: 0x00280120,
  RescaleIntercept: 0x00281052,
  RescaleSlope: 0x00281053,
  RescaleType: 0x00281054,
  LossyImageCompression: 0x00282110,
  PixelMeasuresSequence: 0x00289110,
  PixelValueTransformationSequence: 0x00289145,
  PlanarConfiguration: 0x00280006,
  ContentLabel: 0x00700080,
  ContentDescription: 0x00700081,
  ContentCreatorName: 0x00700084,
  SharedFunctionalGroupsSequence: 0x52009229,
  PerFrameFunctionalGroupsSequence: 0x52009230,
  SegmentationType: 0x00620001,
  SegmentSequence: 0x00620002,
  SegmentedPropertyCategoryCodeSequence: 0x00620003,
  SegmentNumber: 0x00620004,
  SegmentLabel: 0x00620005,
  SegmentDescription: 0x00620006,
  SegmentAlgorithmType: 0x00620008,
  SegmentAlgorithmName: 0x00620009,
  SegmentIdentificationSequence: 0x0062000a,
  ReferencedSegmentNumber: 0x0062000b,
  RecommendedDisplayCIELabValue: 0x0062000d,
  MaximumFractionalValue: 0x0062000e,
  SegmentedPropertyTypeCodeSequence: 0x0062000f,
  SegmentationFractionalType: 0x00620010,
  AnatomicRegionSequence: 0x00082218,
  TrackingID: 0x00620020,
  TrackingUID: 0x00620021,
  PixelData: 0x7fe00010,
  FloatPixelData: 0x7fe00008,
  DoubleFloatPixelData: 0x7fe00009,
  Item: 0xfffee000,
  ItemDelimitation: 0xfffee00d,
  SequenceDelimitation: 0xfffee0dd,
} as const;

let vrTable: Map<number, string> | undefined;

/** VR of a public tag for Implicit VR reading; private and unknown tags are 'UN'. */
export function vrOfTag(tag: number): string {
  if ((tag & 0xffff) === 0) return 'UL'; // group length
  if ((tag >>> 16) & 1) return (tag & 0xffff) < 0x100 ? 'LO' : 'UN'; // private creator / private data
  if (!vrTable) vrTable = buildVrTable();
  return vrTable.get(tag) ?? 'UN';
}

function buildVrTable(): Map<number, string> {
  const out = new Map<number, string>();
  const nameMap = (dcmjs as unknown as { data: { DicomMetaDictionary: { nameMap: Record<string, { tag: string; vr: string }> } } }).data.DicomMetaDictionary
    .nameMap;
  for (const e of Object.values(nameMap)) {
    const m = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(e.tag);
    if (!m) continue; // repeating groups (60xx) are written with 'x': not needed here
    let vr = e.vr;
    if (vr === 'ox')
      vr = 'OW'; // OB or OW: pixel data is re-typed from BitsAllocated where it matters
    else if (vr === 'xs') vr = 'US';
    else if (!/^[A-Z]{2}$/.test(vr)) vr = 'UN';
    out.set(tagOf(parseInt(m[1]!, 16), parseInt(m[2]!, 16)), vr);
  }
  return out;
}

let keywordTable: Map<number, string> | undefined;

/** The dictionary keyword of a public tag (e.g. 'AccessionNumber'), or undefined for private and unknown tags. */
export function tagKeyword(tag: number): string | undefined {
  if (!keywordTable) {
    keywordTable = new Map();
    const nameMap = (dcmjs as unknown as { data: { DicomMetaDictionary: { nameMap: Record<string, { tag: string; name: string }> } } }).data.DicomMetaDictionary
      .nameMap;
    for (const e of Object.values(nameMap)) {
      const m = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(e.tag);
      if (m) keywordTable.set(tagOf(parseInt(m[1]!, 16), parseInt(m[2]!, 16)), e.name);
    }
  }
  return keywordTable.get(tag);
}

export function tagHex(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
