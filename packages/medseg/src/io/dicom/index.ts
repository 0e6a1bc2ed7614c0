/**
 * DICOM for medseg: series -> Volume, SEG read/write, de-identification.
 *
 * Transfer syntaxes read: Implicit VR LE, Explicit VR LE, Explicit VR BE,
 * Deflated Explicit VR LE, RLE Lossless, JPEG Baseline (8-bit). Others (JPEG
 * lossless / extended, JPEG-LS, JPEG 2000, HTJ2K, video) throw UNSUPPORTED
 * naming the transfer syntax UID. Written files are Explicit VR LE.
 */
export { readDicomSeries, readDicomSeriesFromBuffers, listDicomSeries, type DicomSeriesOptions, type DicomSeriesInfo } from './series.ts';
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
export { deidentify, deidentifyDataset, newDeidentifyState, type DeidentifyOptions, type DeidentifyState } from './deidentify.ts';
export { parseDicom, looksLikeDicom, TS, type ParsedDicom, type ParseOptions } from './parse.ts';
export { writeDicom, dataset, el } from './write.ts';
export { DicomDataset, type DicomElement } from './dataset.ts';
export { SUPPORTED_TRANSFER_SYNTAXES } from './pixels.ts';
export { rgbToDicomLab, dicomLabToRgb } from './color.ts';
export { newUid } from './uid.ts';
export { T as DicomTags } from './dictionary.ts';
