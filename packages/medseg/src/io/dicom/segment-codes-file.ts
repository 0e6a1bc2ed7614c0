/** Reads a segment codes file (segment-codes.ts says its layout; that module stays free of Node so the viewer can use it). */
import { readFile } from 'node:fs/promises';
import { MedsegIoError } from '../errors.ts';
import { parseSegmentCodes, type SegmentCodeTable } from './segment-codes.ts';

export async function readSegmentCodes(path: string): Promise<SegmentCodeTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MedsegIoError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_DATA', `cannot read the segment codes file (${code ?? (e as Error).message})`, path);
  }
  return parseSegmentCodes(text, path);
}
