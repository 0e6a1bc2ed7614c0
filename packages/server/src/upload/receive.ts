/**
 * Takes one uploaded case off a multipart request: the `file` part is
 * streamed to a temporary file in the uploads folder (never held whole in
 * memory, never past the size limit), its format is sniffed from its bytes,
 * and the library's reader must read it back within the voxel and
 * decompression limits before a job is made of it (a zip of DICOM files:
 * dicom-zip.ts, within the same limits). On any failure the
 * temporary file is removed: a rejected upload leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Multipart } from '@fastify/multipart';
import { readVolume } from '@medseg/medseg/io/read';
import { MedsegIoError } from '@medseg/medseg/io/errors';
import type { Volume } from '@medseg/medseg/io/volume';
import { isValidUid } from '@medseg/medseg/io/dicom/uid';
import { readDicomZip } from './dicom-zip.ts';
import { FORMAT_ENDING, SNIFF_BYTES, sniffUpload, type UploadFormat } from './sniff.ts';

/** An upload the service refuses, with the HTTP status and a message for the client. */
export class UploadError extends Error {
  override readonly name = 'UploadError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Prefix of files still being received; a start-up sweep removes those a crash left. */
export const INCOMING_PREFIX = '.incoming-';

/**
 * Client file names are only ever shown back, never used as paths; still, a
 * name that tries to leave its folder (or hides control characters) marks a
 * hostile client and is refused.
 */
export function checkFileName(name: string | undefined): void {
  if (name === undefined || name === '') return;
  // eslint-disable-next-line no-control-regex
  if (/[\\/\u0000-\u001f\u007f]/.test(name) || name === '.' || name === '..' || name.length > 255) {
    throw new UploadError(400, 'BAD_FILE_NAME', `file name ${JSON.stringify(name.slice(0, 80))} is not accepted: no folders, no "..", no control characters`);
  }
}

export interface ReceivedCase {
  /** The uploaded file (in the uploads folder, still under a temporary name). */
  path: string;
  format: UploadFormat;
  /** Form fields sent beside the file. */
  fields: Record<string, string>;
  clientName: string | undefined;
  volume: Volume;
  bytes: number;
}

export interface ReceiveLimits {
  maxUploadBytes: number;
  /** Largest voxel buffer a header may ask for. */
  maxVoxelBytes: number;
  /** Largest decompressed size of a .nii.gz. */
  maxDecompressedBytes: number;
}

/** Keeps the first bytes that pass, for sniffing. */
class HeadKeeper extends Transform {
  head = Buffer.alloc(0);
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null, data?: Buffer) => void): void {
    if (this.head.length < SNIFF_BYTES) this.head = Buffer.concat([this.head, chunk.subarray(0, SNIFF_BYTES - this.head.length)]);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** A file taken off a request, not yet sniffed or read: still under its temporary name. */
export interface ReceivedFile {
  path: string;
  /** The file's first SNIFF_BYTES bytes. */
  head: Buffer;
  bytes: number;
  fields: Record<string, string>;
  clientName: string | undefined;
}

/**
 * Receives the parts of a multipart request: exactly one `file` part, streamed
 * to a temporary file within the upload limit, and short text fields. On any
 * failure nothing is left behind.
 */
export async function receiveFile(
  parts: AsyncIterableIterator<Multipart>,
  uploadsDir: string,
  limits: Pick<ReceiveLimits, 'maxUploadBytes'>,
): Promise<ReceivedFile> {
  const fields: Record<string, string> = {};
  const temp = join(uploadsDir, `${INCOMING_PREFIX}${randomBytes(8).toString('hex')}`);
  let received: { head: Buffer; bytes: number; clientName: string | undefined } | undefined;
  try {
    for await (const part of parts) {
      if (part.type === 'field') {
        if (typeof part.value !== 'string') throw new UploadError(400, 'BAD_FIELD', `form field ${part.fieldname} must be text`);
        fields[part.fieldname] = part.value;
        continue;
      }
      if (part.fieldname !== 'file')
        throw new UploadError(400, 'BAD_FIELD', `unexpected file field ${JSON.stringify(part.fieldname)}: send the case as the field "file"`);
      if (received) throw new UploadError(400, 'BAD_FIELD', 'send exactly one file per job');
      checkFileName(part.filename);
      const keeper = new HeadKeeper();
      try {
        await pipeline(part.file, keeper, createWriteStream(temp, { flags: 'wx' }));
      } catch (e) {
        if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE' || part.file.truncated) {
          throw new UploadError(413, 'TOO_LARGE', `the file is larger than the ${limits.maxUploadBytes}-byte upload limit`);
        }
        throw e;
      }
      if (part.file.truncated) throw new UploadError(413, 'TOO_LARGE', `the file is larger than the ${limits.maxUploadBytes}-byte upload limit`);
      received = { head: keeper.head, bytes: keeper.bytes, clientName: part.filename || undefined };
    }
    if (!received) throw new UploadError(400, 'NO_FILE', 'no file: send the case as the multipart field "file"');
    if (received.bytes === 0) throw new UploadError(400, 'EMPTY_FILE', 'the file is empty');
    return { path: temp, ...received, fields };
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

/**
 * A received file as a case: its format sniffed from its bytes, renamed with
 * that format's ending, and read back by the library within the voxel and
 * decompression limits. On failure the file is removed.
 */
export async function readReceivedCase(file: ReceivedFile, limits: ReceiveLimits): Promise<ReceivedCase> {
  let finalPath: string | undefined;
  try {
    const sniffed = sniffUpload(file.head);
    if (!sniffed.ok) throw new UploadError(415, 'UNSUPPORTED_CONTENT', sniffed.message);
    finalPath = `${file.path}${FORMAT_ENDING[sniffed.format]}`;
    await rename(file.path, finalPath);
    const { fields, clientName, bytes } = file;
    let volume: Volume;
    const series = fields.series;
    if (series !== undefined && !isValidUid(series))
      throw new UploadError(400, 'BAD_FIELD', `the field "series" must be a SeriesInstanceUID (got ${JSON.stringify(series.slice(0, 80))})`);
    if (sniffed.format === 'dicom-zip') {
      volume = await readDicomZip(finalPath, {
        maxDecompressedBytes: limits.maxDecompressedBytes,
        maxVoxelBytes: limits.maxVoxelBytes,
        seriesInstanceUid: series,
      });
      return { path: finalPath, format: sniffed.format, fields, clientName, volume, bytes };
    }
    try {
      volume = await readVolume(finalPath, { limits: { maxBytes: limits.maxVoxelBytes, maxDecompressedBytes: limits.maxDecompressedBytes } });
    } catch (e) {
      if (e instanceof MedsegIoError) {
        const message = e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
        throw new UploadError(e.code === 'TOO_LARGE' ? 413 : 400, `INVALID_${e.code}`, `the ${sniffed.format} file cannot be read: ${message}`);
      }
      throw e;
    }
    return { path: finalPath, format: sniffed.format, fields, clientName, volume, bytes };
  } catch (e) {
    await unlink(file.path).catch(() => undefined);
    if (finalPath) await unlink(finalPath).catch(() => undefined);
    throw e;
  }
}

/** Receives one uploaded case (receiveFile, then readReceivedCase). */
export async function receiveCase(parts: AsyncIterableIterator<Multipart>, uploadsDir: string, limits: ReceiveLimits): Promise<ReceivedCase> {
  return readReceivedCase(await receiveFile(parts, uploadsDir, limits), limits);
}
