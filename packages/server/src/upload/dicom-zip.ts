/**
 * A DICOM series uploaded as a zip archive. The archive is read through its
 * central directory (yauzl), entry by entry into memory, within limits
 * checked before anything is inflated: the number of entries, and the sum of
 * the sizes the directory declares (a zip bomb is refused by its directory;
 * one whose directory lies is stopped by yauzl as soon as an entry inflates
 * past its declared size). Entry names are never used as paths, but a name
 * that leaves its folder ("../", an absolute path, a backslash: zip slip)
 * refuses the whole archive all the same. Files that are not DICOM (a
 * README, a DICOMDIR's companions) are left out; the DICOM files must hold
 * one image series, or name it.
 */
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { looksLikeDicom } from '@medseg/medseg/io/dicom/parse';
import { readDicomSeriesFromBuffers } from '@medseg/medseg/io/dicom/series';
import { MedsegIoError } from '@medseg/medseg/io/errors';
import type { Volume } from '@medseg/medseg/io/volume';

/** An archive the service refuses, with the HTTP status and a code for the client. */
export class DicomZipError extends Error {
  override readonly name = 'DicomZipError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ZipLimits {
  /** Largest sum of the entries' inflated sizes. */
  maxDecompressedBytes: number;
  /** Most entries (files and folders) in the archive (default 20 000). */
  maxEntries?: number;
}

export interface ZipFileEntry {
  name: string;
  bytes: Buffer;
}

function openZip(path: string): Promise<ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true }, (err, zip) =>
      err || !zip ? reject(err ?? new Error('no zip file')) : resolve(zip),
    ),
  );
}

/** yauzl's error as a DicomZipError: a name that leaves its folder, a size that lies, or an archive that does not read. */
function zipError(e: unknown): DicomZipError {
  const m = e instanceof Error ? e.message : String(e);
  if (/invalid relative path|absolute path|invalid characters in fileName/i.test(m)) {
    return new DicomZipError(400, 'ZIP_SLIP', `the archive holds an entry whose name leaves its folder (${m}): not accepted`);
  }
  if (/too many bytes in the stream|too few bytes in the stream/i.test(m)) {
    return new DicomZipError(400, 'ZIP_SIZE_MISMATCH', `an entry inflates to another size than the archive's directory declares (${m}): not accepted`);
  }
  return new DicomZipError(400, 'BAD_ZIP', `the zip archive cannot be read: ${m}`);
}

/** The DICOM files of the archive at `path` (entries that do not look like DICOM are left out). */
export async function readZipDicomFiles(path: string, limits: ZipLimits): Promise<ZipFileEntry[]> {
  const zip = await openZip(path).catch((e: unknown) => {
    throw zipError(e);
  });
  const maxEntries = limits.maxEntries ?? 20_000;
  if (zip.entryCount > maxEntries) {
    zip.close();
    throw new DicomZipError(413, 'ZIP_TOO_MANY_ENTRIES', `the archive holds ${zip.entryCount} entries, over the limit of ${maxEntries}`);
  }
  return new Promise<ZipFileEntry[]>((resolve, reject) => {
    const files: ZipFileEntry[] = [];
    let declared = 0;
    let settled = false;
    const fail = (e: DicomZipError) => {
      if (settled) return;
      settled = true;
      if (zip.isOpen) zip.close();
      reject(e);
    };
    zip.on('error', (e: unknown) => fail(zipError(e)));
    zip.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(files);
    });
    zip.on('entry', (entry: Entry) => {
      if (settled) return;
      if (entry.fileName.endsWith('/')) return zip.readEntry();
      declared += entry.uncompressedSize;
      if (declared > limits.maxDecompressedBytes) {
        return fail(
          new DicomZipError(
            413,
            'ZIP_TOO_LARGE',
            `the archive inflates to more than the ${limits.maxDecompressedBytes}-byte limit (a zip bomb, or too large a series)`,
          ),
        );
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return fail(zipError(err ?? new Error('no stream')));
        const chunks: Buffer[] = [];
        let n = 0;
        stream.on('data', (c: Buffer) => {
          n += c.length;
          chunks.push(c);
        });
        stream.on('error', (e: unknown) => fail(zipError(e)));
        stream.on('end', () => {
          if (settled) return;
          const bytes = Buffer.concat(chunks, n);
          if (looksLikeDicom(bytes)) files.push({ name: entry.fileName, bytes });
          zip.readEntry();
        });
      });
    });
    zip.readEntry();
  });
}

/** The series of a DICOM zip as a Volume (the one image series, or the one named). */
export async function readDicomZip(
  path: string,
  o: { maxDecompressedBytes: number; maxVoxelBytes: number; seriesInstanceUid?: string; maxEntries?: number },
): Promise<Volume> {
  const files = await readZipDicomFiles(path, o);
  if (files.length === 0) throw new DicomZipError(400, 'ZIP_NO_DICOM', 'the archive holds no DICOM file');
  try {
    return await readDicomSeriesFromBuffers(files, { seriesInstanceUID: o.seriesInstanceUid, limits: { maxBytes: o.maxVoxelBytes } });
  } catch (e) {
    if (e instanceof MedsegIoError)
      throw new DicomZipError(
        e.code === 'TOO_LARGE' ? 413 : 400,
        `INVALID_${e.code}`,
        `the DICOM files in the archive cannot be read as one series: ${e.message}`,
      );
    throw e;
  }
}
