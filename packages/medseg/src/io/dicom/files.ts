/**
 * Finding and parsing the DICOM files of a folder or a list, bounded: at most
 * MAX_FILES files are looked at. Walking a folder, non-DICOM files
 * (screenshots, NRRDs, DICOMDIR-less junk) are skipped silently, and files
 * that start like DICOM but do not parse (truncated, corrupt) are skipped and
 * reported as SkippedFile, so one bad file does not hide the series beside it.
 * From an explicit list of files every failure is an error.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MedsegIoError } from '../errors.ts';
import { fsError } from '../limits.ts';
import { looksLikeDicom, parseDicom, type ParseOptions, type ParsedDicom } from './parse.ts';

const MAX_FILES = 100_000;
const MAX_DEPTH = 8;

export interface DicomFile extends ParsedDicom {
  path: string;
}

/** A file of a folder that looked like DICOM but could not be read. */
export interface SkippedFile {
  path: string;
  code: MedsegIoError['code'];
  reason: string;
}

export function skippedMessage(s: SkippedFile): string {
  return `skipped ${s.path}: ${s.code} ${s.reason}`;
}

export async function listFiles(pathOrFiles: string | string[]): Promise<{ files: string[]; fromFolder: boolean }> {
  if (Array.isArray(pathOrFiles)) return { files: pathOrFiles, fromFolder: false };
  let st;
  try {
    st = await stat(pathOrFiles);
  } catch (e) {
    throw fsError(e, pathOrFiles);
  }
  if (!st.isDirectory()) return { files: [pathOrFiles], fromFolder: false };
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
      throw fsError(e, dir);
    });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.isFile() && e.name !== 'DICOMDIR') {
        if (out.length >= MAX_FILES) throw new MedsegIoError('TOO_LARGE', `more than ${MAX_FILES} files`, pathOrFiles);
        out.push(p);
      }
    }
  };
  await walk(pathOrFiles, 0);
  return { files: out, fromFolder: true };
}

/**
 * Reads and parses files. From a folder, files that do not look like DICOM
 * are skipped, and those that fail to parse are skipped into `skipped`; from
 * an explicit list both are errors.
 */
export async function readDicomFiles(
  files: string[],
  fromFolder: boolean,
  opts: Omit<ParseOptions, 'path'> = {},
  skipped: SkippedFile[] = [],
): Promise<DicomFile[]> {
  const out: DicomFile[] = [];
  const BATCH = 16;
  for (let i = 0; i < files.length; i += BATCH) {
    const chunk = files.slice(i, i + BATCH);
    const bufs = await Promise.all(
      chunk.map((p) =>
        readFile(p).catch((e: unknown) => {
          throw fsError(e, p);
        }),
      ),
    );
    bufs.forEach((buf, j) => {
      const path = chunk[j]!;
      if (fromFolder && !looksLikeDicom(buf)) return;
      try {
        out.push({ ...parseDicom(buf, { ...opts, path }), path });
      } catch (e) {
        if (!fromFolder || !(e instanceof MedsegIoError) || e.code === 'TOO_LARGE') throw e;
        skipped.push({ path, code: e.code, reason: e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message });
      }
    });
  }
  return out;
}
