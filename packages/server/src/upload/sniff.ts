/**
 * What an uploaded file is, told by its bytes and never by its name:
 * NIfTI-1/2 (plain or gzip-wrapped), NRRD with its data attached, PNG, or a
 * zip archive (of a DICOM series: upload/dicom-zip.ts reads it).
 * A detached NRRD header (one naming a data file) is refused: it would make
 * the server read a file of its own choosing.
 */
import { constants, gunzipSync } from 'node:zlib';

export const UPLOAD_FORMATS = ['nifti', 'nifti-gz', 'nrrd', 'png', 'dicom-zip'] as const;
export type UploadFormat = (typeof UPLOAD_FORMATS)[number];

/** File ending of each format: readers and writers of the library go by it. */
export const FORMAT_ENDING: Record<UploadFormat, string> = { nifti: '.nii', 'nifti-gz': '.nii.gz', nrrd: '.nrrd', png: '.png', 'dicom-zip': '.zip' };

/** Bytes of the file's beginning that sniffing needs. */
export const SNIFF_BYTES = 4096;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export type Sniffed = { ok: true; format: UploadFormat } | { ok: false; message: string };

function niftiHeader(b: Uint8Array): boolean {
  if (b.length < 348) return false;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (from: number, n: number) => Buffer.from(b.subarray(from, from + n)).toString('latin1');
  for (const le of [true, false]) {
    const size = dv.getInt32(0, le);
    if (size === 348 && (ascii(344, 4) === 'n+1\0' || ascii(344, 4) === 'ni1\0')) return ascii(344, 4) === 'n+1\0';
    if (size === 540 && b.length >= 540 && ascii(4, 4) === 'n+2\0') return true;
  }
  return false;
}

/** The format of a file from its first SNIFF_BYTES bytes (or all of them, when shorter). */
export function sniffUpload(head: Uint8Array): Sniffed {
  if (head.length >= 8 && PNG_MAGIC.every((v, i) => head[i] === v)) return { ok: true, format: 'png' };
  // A local file header, or the end-of-directory record of an empty archive.
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) {
    return { ok: true, format: 'dicom-zip' };
  }
  const text = Buffer.from(head).toString('latin1');
  if (text.startsWith('NRRD000')) {
    const end = text.search(/\r?\n\r?\n/);
    const header = end >= 0 ? text.slice(0, end) : text;
    if (/^\s*data ?file\s*:/im.test(header)) {
      return { ok: false, message: 'detached NRRD headers (with a "data file" field) are not accepted: upload a .nrrd with its data attached' };
    }
    return { ok: true, format: 'nrrd' };
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    let inner: Buffer;
    try {
      inner = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1 << 20 });
    } catch {
      return { ok: false, message: 'the file is gzip-compressed but its beginning does not decompress' };
    }
    if (niftiHeader(inner)) return { ok: true, format: 'nifti-gz' };
    return { ok: false, message: 'the file is gzip-compressed but holds no single-file NIfTI image (only .nii.gz is accepted compressed)' };
  }
  if (niftiHeader(head)) return { ok: true, format: 'nifti' };
  return {
    ok: false,
    message: 'unrecognised file content: expected a single-file NIfTI (.nii, .nii.gz), an NRRD with attached data (.nrrd), a PNG, or a zip of one DICOM series',
  };
}
