/**
 * DICOM series -> Volume: classic single-frame CT/MR slices, enhanced
 * multi-frame CT/MR (functional groups), and single-frame projection images
 * (CR/DX/X-ray) as 2D. The stack and its geometry come from series-grid.ts;
 * this module decodes the pixels onto it.
 */
import { DEFAULT_LIMITS, MedsegIoError, type ReadLimits } from '../errors.ts';
import { checkAllocation, resolveLimits } from '../limits.ts';
import { allocVoxels, type Volume, type VoxelArray, type VoxelType } from '../volume.ts';
import { T } from './dictionary.ts';
import { loadCodecsFor } from './codecs.ts';
import { listFiles, readDicomFiles, skippedMessage, type DicomFile, type SkippedFile } from './files.ts';
import { checkNativeLength, decodedPhotometric, decodeFrames, pixelInfo, type PixelInfo } from './pixels.ts';
import { parseDicom } from './parse.ts';
import { applyPalette, readPaletteLut, type PaletteLut } from './palette.ts';
import { COPIED, framesOf, groupBySeries, NON_IMAGE, stackSeries } from './series-grid.ts';

export interface DicomSeriesOptions {
  limits?: Partial<ReadLimits>;
  /** Pick one series when the folder holds several. */
  seriesInstanceUID?: string;
  /** Accept missing slices / uneven gaps (stacked at the median spacing, with a warning in meta.extra.warnings). */
  allowGaps?: boolean;
  /** MONOCHROME1 (0 = white) is inverted to MONOCHROME2 by default; false keeps the stored values. */
  invertMonochrome1?: boolean;
}

export interface DicomSeriesInfo {
  seriesInstanceUID: string;
  description: string;
  modality: string;
  sopClassUID: string;
  /** Number of slices (frames for a multi-frame object). */
  sliceCount: number;
  files: string[];
}

function describe(uid: string, files: DicomFile[]): DicomSeriesInfo {
  const ds = files[0]!.dataset;
  const frames = files.reduce((n, f) => n + framesOf(f), 0);
  return {
    seriesInstanceUID: uid,
    description: ds.string(T.SeriesDescription) ?? '',
    modality: ds.string(T.Modality) ?? 'unknown',
    sopClassUID: ds.string(T.SOPClassUID) ?? '',
    sliceCount: frames,
    files: files.map((f) => f.path),
  };
}

export interface ListSeriesOptions {
  /**
   * Called for each file of a folder that starts like DICOM but does not parse
   * (truncated, corrupt); it is left out of the listing. Default: a Node
   * process warning (code MEDSEG_DICOM_SKIPPED) naming the file.
   */
  onSkip?: (file: SkippedFile) => void;
}

/** The series found in a folder (or list of files), with description, modality and slice count. */
export async function listDicomSeries(pathOrFiles: string | string[], opts: ListSeriesOptions = {}): Promise<DicomSeriesInfo[]> {
  const { files, fromFolder } = await listFiles(pathOrFiles);
  const skipped: SkippedFile[] = [];
  const parsed = await readDicomFiles(files, fromFolder, { untilTag: T.PixelData }, skipped);
  const onSkip = opts.onSkip ?? ((f: SkippedFile) => process.emitWarning(skippedMessage(f), { code: 'MEDSEG_DICOM_SKIPPED' }));
  skipped.forEach(onSkip);
  return [...groupBySeries(parsed)].map(([uid, fs]) => describe(uid, fs));
}

export async function readDicomSeries(pathOrFiles: string | string[], opts: DicomSeriesOptions = {}): Promise<Volume> {
  const limits = resolveLimits(opts.limits);
  const where = Array.isArray(pathOrFiles) ? pathOrFiles[0] : pathOrFiles;
  const { files, fromFolder } = await listFiles(pathOrFiles);
  const skipped: SkippedFile[] = [];
  const parsed = await readDicomFiles(files, fromFolder, { limits }, skipped);
  if (parsed.length === 0) {
    const why = skipped.length ? `: ${skipped.map(skippedMessage).join('; ')}` : '';
    throw new MedsegIoError('NOT_FOUND', `no readable DICOM files found${why}`, where);
  }
  return volumeFromDicomFiles(parsed, opts, where, skipped);
}

/**
 * The same from files already in memory (a DICOMweb response, an upload):
 * each buffer is a Part 10 file; `name` is used in error messages.
 */
export async function readDicomSeriesFromBuffers(buffers: { name: string; bytes: Uint8Array }[], opts: DicomSeriesOptions = {}): Promise<Volume> {
  const limits = resolveLimits(opts.limits);
  const parsed = buffers.map((b) => ({ ...parseDicom(b.bytes, { path: b.name, limits }), path: b.name }));
  if (parsed.length === 0) throw new MedsegIoError('NOT_FOUND', 'no DICOM files given');
  return volumeFromDicomFiles(parsed, opts, buffers[0]!.name);
}

async function volumeFromDicomFiles(parsed: DicomFile[], opts: DicomSeriesOptions, where?: string, skipped: SkippedFile[] = []): Promise<Volume> {
  const limits = resolveLimits(opts.limits);
  const groups = groupBySeries(parsed);
  let chosen: [string, DicomFile[]] | undefined;
  if (opts.seriesInstanceUID !== undefined) {
    const g = groups.get(opts.seriesInstanceUID);
    if (!g) throw new MedsegIoError('NOT_FOUND', `series ${opts.seriesInstanceUID} not found (have: ${[...groups.keys()].join(', ')})`, where);
    chosen = [opts.seriesInstanceUID, g];
  } else {
    const images = [...groups].filter(
      ([, fs]) => !NON_IMAGE.has(fs[0]!.dataset.string(T.Modality) ?? '') && fs.some((f) => f.dataset.has(T.PixelData) || f.dataset.has(T.FloatPixelData)),
    );
    if (images.length > 1) {
      const list = images.map(([uid, fs]) => {
        const d = describe(uid, fs);
        return `${uid} (${d.modality}, ${d.sliceCount} slices${d.description ? `, "${d.description}"` : ''})`;
      });
      throw new MedsegIoError('INCONSISTENT_SERIES', `${images.length} image series found; pick one with seriesInstanceUID: ${list.join('; ')}`, where);
    }
    chosen = images[0] ?? [...groups][0];
  }
  const files = chosen![1];
  // Only the codecs this series needs are loaded (none for uncompressed data).
  await loadCodecsFor(files.map((f) => f.transferSyntaxUID));
  return buildVolume(files, limits, opts, where, skipped);
}

function buildVolume(files: DicomFile[], limits: ReadLimits, opts: DicomSeriesOptions, where: string | undefined, skipped: SkippedFile[]): Volume {
  for (const f of files) {
    if (!f.dataset.has(T.PixelData) && !f.dataset.has(T.FloatPixelData) && !f.dataset.has(T.DoubleFloatPixelData)) {
      throw new MedsegIoError('BAD_DATA', 'no pixel data', f.path);
    }
  }
  const infos = files.map((f) => pixelInfo(f.dataset, f.path));
  const info0 = infos[0]!;
  infos.forEach((inf, i) => {
    if (inf.rows !== info0.rows || inf.columns !== info0.columns || inf.type !== info0.type || inf.samplesPerPixel !== info0.samplesPerPixel) {
      throw new MedsegIoError(
        'INCONSISTENT_SERIES',
        `slice is ${inf.columns}x${inf.rows} ${inf.type}, the first is ${info0.columns}x${info0.rows} ${info0.type}`,
        files[i]!.path,
      );
    }
  });
  if (info0.type === 'bit') throw new MedsegIoError('UNSUPPORTED', '1-bit images are read with readDicomSeg', where);
  // PALETTE COLOR: each file's own red, green and blue tables turn its stored values into RGB.
  const palettes = info0.photometric === 'PALETTE COLOR' ? files.map((f, i) => readPaletteLut(f.dataset, infos[i]!.pixelRepresentation, f.path)) : undefined;
  if (palettes?.some((p) => p.type !== palettes[0]!.type)) {
    throw new MedsegIoError('INCONSISTENT_SERIES', 'palette tables of different entry widths (8 and 16 bits) in one series', where);
  }
  const totalFrames = infos.reduce((n, i) => n + i.frames, 0);
  checkAllocation(info0.rows * info0.columns * (palettes ? 3 : info0.samplesPerPixel) * totalFrames, 4, limits, where);
  // A header may claim more frames than the file holds: check before building per-frame state.
  files.forEach((f, i) => checkNativeLength(f, infos[i]!, f.path));

  const grid = stackSeries(files, { allowGaps: opts.allowGaps, frames: infos.map((inf) => inf.frames), warnings: skipped.map(skippedMessage) }, where, skipped);
  const slices = grid.slices;

  // Pixel data: decode each file once, place each frame at its sorted z.
  const nx = info0.columns;
  const ny = info0.rows;
  const nz = slices.length;
  const spp = palettes ? 3 : info0.samplesPerPixel;
  const rescaled = !palettes && slices.some((s) => s.plane.slope !== 1 || s.plane.intercept !== 0);
  const outType: VoxelType = palettes ? palettes[0]!.type : rescaled ? 'float32' : (info0.type as VoxelType);
  const data = allocVoxels(outType, nx * ny * nz * spp);
  const decoded = new Map<DicomFile, VoxelArray[]>();
  const invert = info0.photometric === 'MONOCHROME1' && opts.invertMonochrome1 !== false;
  slices.forEach((s, z) => {
    let frames = decoded.get(s.file);
    if (!frames) {
      const k = files.indexOf(s.file);
      frames = decodeFrames(s.file, infos[k]!, limits, s.file.path);
      const lut: PaletteLut | undefined = palettes?.[k];
      if (lut) frames = frames.map((f) => applyPalette(f, lut));
      decoded.set(s.file, frames);
    }
    const frame = frames[s.frame]!;
    const plane = nx * ny;
    const { slope, intercept } = s.plane;
    const inv = invert ? invertOf(info0) : undefined;
    for (let c = 0; c < spp; c++) {
      const dst = (z + nz * c) * plane;
      const src = c * plane;
      if (!rescaled && !inv) {
        data.set(frame.subarray(src, src + plane) as ArrayLike<number>, dst);
        continue;
      }
      if (inv) for (let i = 0; i < plane; i++) data[dst + i] = inv(frame[src + i]!) * slope + intercept;
      else rescaleInto(data, dst, frame, src, plane, slope, intercept);
    }
  });

  const distinct = (xs: number[]) => [...new Set(xs)];
  const slopes = distinct(slices.map((s) => s.plane.slope));
  const intercepts = distinct(slices.map((s) => s.plane.intercept));
  return {
    data,
    size: grid.size,
    channels: spp,
    spacing: grid.spacing,
    origin: grid.origin,
    direction: grid.direction,
    meta: {
      ...grid.meta,
      extra: {
        ...grid.meta.extra,
        photometricInterpretation: invert
          ? 'MONOCHROME1 (inverted to MONOCHROME2)'
          : decodedPhotometric(info0) !== info0.photometric
            ? `${info0.photometric} (decoded to ${decodedPhotometric(info0)})`
            : info0.photometric,
        rescaleSlope: slopes.length === 1 ? slopes[0] : slopes,
        rescaleIntercept: intercepts.length === 1 ? intercepts[0] : intercepts,
        storedType: info0.type,
      },
    },
  };
}

/** Kept apart from the caller so the JIT sees one pair of array types per call (several times faster). */
function rescaleInto(dst: VoxelArray, dstOff: number, src: VoxelArray, srcOff: number, n: number, slope: number, intercept: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]! * slope + intercept;
}

function invertOf(info: PixelInfo): (v: number) => number {
  if (info.pixelRepresentation === 1) return (v) => -1 - v;
  const max = 2 ** info.bitsStored - 1;
  return (v) => max - v;
}

export { COPIED, NON_IMAGE };
export { DEFAULT_LIMITS };
