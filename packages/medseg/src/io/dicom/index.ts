/**
 * DICOM for medseg: series -> Volume, SEG and RTSTRUCT read/write, de-identification.
 *
 * Transfer syntaxes read: Implicit VR LE, Explicit VR LE, Explicit VR BE,
 * Deflated Explicit VR LE, RLE Lossless, and through lazily loaded codecs
 * (codecs.ts) JPEG baseline and extended 8- and 12-bit, JPEG lossless (.57, .70),
 * JPEG-LS (.80, .81), JPEG 2000 (.90, .91) and HTJ2K (.201-.203). Others
 * (JPEG XL, video) throw UNSUPPORTED naming the transfer
 * syntax UID. Written files are Explicit VR LE. Pixels: MONOCHROME1 is
 * inverted, YBR converted and PALETTE COLOR mapped through its tables
 * (palette.ts) to RGB; text is decoded in its Specific Character Set,
 * ISO 2022 code extensions included (charset.ts).
 */
export {
  readDicomSeries,
  readDicomSeriesFromBuffers,
  listDicomSeries,
  type DicomSeriesOptions,
  type DicomSeriesInfo,
  type ListSeriesOptions,
} from './series.ts';
export type { SkippedFile } from './files.ts';
export { loadCodecFor, loadCodecsFor, codecFor } from './codecs.ts';
export {
  readDicomSeg,
  parseDicomSeg,
  segMasks,
  segLabelmap,
  segGrid,
  placeFrames,
  SEG_SOP_CLASS,
  type DicomSegmentation,
  type SegmentInfo,
  type SegFrame,
  type Code,
  type SegReadOptions,
  type LabelmapResult,
} from './seg-read.ts';
export { writeDicomSeg, buildDicomSeg, DEFAULT_CATEGORY, DEFAULT_TYPE, type SegmentDescription, type SegWriteOptions } from './seg-write.ts';
export {
  defaultSegmentCodes,
  segmentCodesFor,
  fallbackCodes,
  parseSegmentCodes,
  ANATOMY,
  MODIFIERS,
  CATEGORY,
  type SegmentCodes,
  type SuppliedSegment,
  type SegmentCodeTable,
} from './segment-codes.ts';
export { readSegmentCodes } from './segment-codes-file.ts';
export { buildSegDataset, type SegBuildOptions, type SegSource } from './seg-build.ts';
export { readSeriesGrids, stackSeries, type FoundSeries, type SeriesGrid } from './series-grid.ts';
export { writeRtStruct, buildRtStruct, type RoiDescription, type RtStructWriteOptions } from './rtstruct-write.ts';
export {
  readRtStruct,
  parseRtStruct,
  rtstructMasks,
  rtstructLabelmap,
  type RtStructureSet,
  type RtRoi,
  type RtContour,
  type RtStructReadOptions,
  type RasterisedRois,
} from './rtstruct-read.ts';
export { RTSTRUCT_SOP_CLASS } from './result-tags.ts';
export { AI_ALGORITHM_FAMILY } from './result-elements.ts';
export {
  deidentify,
  deidentifyDataset,
  deidentifyDatasetWithReport,
  deidentifyFile,
  newDeidentifyState,
  BurnedInAnnotationError,
  type DeidentifyOptions,
  type DeidentifyState,
  type DeidChange,
  type DeidReport,
  type PrivateTagRule,
} from './deidentify.ts';
export { deidentifyTree, DeidentifyFailures, type DeidentifyTreeResult, type DeidFileResult } from './deidentify-tree.ts';
export { PROFILE_ROWS, PRIVATE_ROW, profileRow, type ProfileRow, type ProfileOption } from './deid-profile.ts';
export { parseDicom, looksLikeDicom, TS, type ParsedDicom, type ParseOptions } from './parse.ts';
export { writeDicom, dataset, el } from './write.ts';
export { DicomDataset, type DicomElement } from './dataset.ts';
export { SUPPORTED_TRANSFER_SYNTAXES } from './pixels.ts';
export { rgbToDicomLab, dicomLabToRgb } from './color.ts';
export { readPaletteLut, applyPalette, expandSegmentedLut, type PaletteLut } from './palette.ts';
export { decodeDicomText } from './charset.ts';
export { newUid } from './uid.ts';
export { T as DicomTags } from './dictionary.ts';
