/**
 * One entry point for every format: readVolume dispatches on the extension
 * (falling back to the file's magic bytes), writeVolume on the extension.
 * DICOM lives in ./dicom/ and is loaded lazily so the other formats work
 * without it.
 */
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { MedsegIoError } from './errors.ts';
import { decodeImage2d, readImage2d, sniffImage2d } from './image2d.ts';
import type { Image2dOptions } from './image2d-common.ts';
import { encodePng } from './image2d-png.ts';
import { fsError, type ReadOptions } from './limits.ts';
import { encodeNifti, readNifti } from './nifti.ts';
import { encodeNrrd, readNrrd } from './nrrd.ts';
import type { Volume } from './volume.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

export type VolumeFormat = 'nifti' | 'nrrd' | 'image2d' | 'dicom';
export interface ReadVolumeOptions extends ReadOptions {
  palette?: Image2dOptions['palette'];
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.gif']);

export function formatFromName(path: string): VolumeFormat | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.nii') || p.endsWith('.nii.gz')) return 'nifti';
  if (p.endsWith('.nrrd') || p.endsWith('.nhdr')) return 'nrrd';
  if (p.endsWith('.dcm')) return 'dicom';
  if (IMAGE_EXT.has(extname(p))) return 'image2d';
  return undefined;
}

async function sniff(path: string): Promise<VolumeFormat | undefined> {
  const fh = await open(path, 'r');
  try {
    const head = new Uint8Array(544);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const b = head.subarray(0, bytesRead);
    const ascii = Buffer.from(b.subarray(0, 8)).toString('latin1');
    if (ascii.startsWith('NRRD000')) return 'nrrd';
    if (b.length >= 132 && Buffer.from(b.subarray(128, 132)).toString('latin1') === 'DICM') return 'dicom';
    if (sniffImage2d(b)) return 'image2d';
    if (b[0] === 0x1f && b[1] === 0x8b) return 'nifti'; // gzip: the only gzip-wrapped format we read whole
    if (b.length >= 4) {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const s = [dv.getInt32(0, true), dv.getInt32(0, false)];
      if (s.includes(348) || s.includes(540)) return 'nifti';
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

async function readDicom(path: string, opts: ReadVolumeOptions): Promise<Volume> {
  let mod: { readDicomSeries?: (p: string, o?: unknown) => Promise<Volume> | Volume };
  const spec = './dicom/index.ts'; // not a literal: the DICOM module is optional at type-check time
  try {
    mod = (await import(spec)) as typeof mod;
  } catch (e) {
    throw new MedsegIoError('UNSUPPORTED', `DICOM support is not available (${(e as Error).message})`, path);
  }
  if (typeof mod.readDicomSeries !== 'function') {
    throw new MedsegIoError('UNSUPPORTED', 'DICOM support is not available (no readDicomSeries)', path);
  }
  return await mod.readDicomSeries(path, opts);
}

export async function readVolume(path: string, opts: ReadVolumeOptions = {}): Promise<Volume> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, path);
  }
  if (st.isDirectory()) return readDicom(path, opts);
  const format = formatFromName(path) ?? (await sniff(path));
  switch (format) {
    case 'nifti':
      return readNifti(path, opts);
    case 'nrrd':
      return readNrrd(path, opts);
    case 'image2d':
      return readImage2d(path, opts);
    case 'dicom':
      return readDicom(path, opts);
    default:
      throw new MedsegIoError('UNSUPPORTED', 'unknown file format (expected .nii[.gz], .nrrd/.nhdr, .png/.jpg/.tif/.bmp/.gif, .dcm or a DICOM folder)', path);
  }
}

/** Bytes of a volume in the format named by the path's extension. */
export function encodeVolume(path: string, v: Volume): Buffer {
  const p = path.toLowerCase();
  if (p.endsWith('.nii.gz')) return encodeNifti(v, { gzip: true });
  if (p.endsWith('.nii')) return encodeNifti(v);
  if (p.endsWith('.nrrd')) return encodeNrrd(v, { encoding: 'gzip' });
  if (p.endsWith('.png')) return encodePng(v);
  throw new MedsegIoError('UNSUPPORTED', 'cannot write this format (use .nii, .nii.gz, .nrrd or .png)', path);
}

/** Writes atomically, so a failure never leaves a half-written file in place of a good one. */
export async function writeVolume(path: string, v: Volume): Promise<void> {
  const bytes = encodeVolume(path, v);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw fsError(e, path);
  }
}

export { decodeImage2d };
