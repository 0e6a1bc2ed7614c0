/**
 * Tags of the result objects medseg writes and reads back beyond those in
 * dictionary.ts: algorithm identification (SEG and RT Structure Set) and the
 * RT Structure Set's modules (PS3.3 C.8.8.5, C.8.8.6, C.8.8.8).
 */
/** Segmentation Storage. */
export const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';

export const R = {
  InstanceCreationDate: 0x00080012,
  InstanceCreationTime: 0x00080013,
  OperatorsName: 0x00081070,
  PurposeOfReferenceCodeSequence: 0x0040a170,
  SegmentationAlgorithmIdentificationSequence: 0x00620007,
  SegmentedPropertyTypeModifierCodeSequence: 0x00620011,
  AlgorithmFamilyCodeSequence: 0x0066002f,
  AlgorithmVersion: 0x00660031,
  AlgorithmName: 0x00660036,
  StructureSetLabel: 0x30060002,
  StructureSetName: 0x30060004,
  StructureSetDate: 0x30060008,
  StructureSetTime: 0x30060009,
  ReferencedFrameOfReferenceSequence: 0x30060010,
  RTReferencedStudySequence: 0x30060012,
  RTReferencedSeriesSequence: 0x30060014,
  ContourImageSequence: 0x30060016,
  StructureSetROISequence: 0x30060020,
  ROINumber: 0x30060022,
  ReferencedFrameOfReferenceUID: 0x30060024,
  ROIName: 0x30060026,
  ROIDescription: 0x30060028,
  ROIDisplayColor: 0x3006002a,
  ROIGenerationAlgorithm: 0x30060036,
  ROIDerivationAlgorithmIdentificationSequence: 0x30060037,
  ROIGenerationDescription: 0x30060038,
  ROIContourSequence: 0x30060039,
  ContourSequence: 0x30060040,
  ContourGeometricType: 0x30060042,
  NumberOfContourPoints: 0x30060046,
  ContourNumber: 0x30060048,
  ContourData: 0x30060050,
  RTROIObservationsSequence: 0x30060080,
  ObservationNumber: 0x30060082,
  ReferencedROINumber: 0x30060084,
  ROIObservationLabel: 0x30060085,
  RTROIIdentificationCodeSequence: 0x30060086,
  RTROIInterpretedType: 0x300600a4,
  ROIInterpreter: 0x300600a6,
} as const;

/** RT Structure Set Storage. */
export const RTSTRUCT_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.481.3';
/** The (retired) Detached Study Management SOP Class: what RT Referenced Study Sequence items name by convention, and what planning systems expect there. */
export const STUDY_REFERENCE_SOP_CLASS = '1.2.840.10008.3.1.2.3.1';
