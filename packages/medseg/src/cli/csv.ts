/**
 * A small RFC 4180 CSV reader for the side files the CLI accepts (subgroup
 * tables: a few columns, a few thousand rows). Hand-written because it is a
 * 30-line state machine; quoted fields, doubled quotes, CRLF and a BOM are
 * handled, ragged rows are an error naming the line.
 */
import { readFile } from 'node:fs/promises';
import { MedsegIoError } from '../io/errors.ts';
import { fsError } from '../io/limits.ts';

const MAX_CSV_BYTES = 64 * 1024 ** 2;

export function parseCsv(text: string, path?: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = () => {
    row.push(field);
    field = '';
    if (!(row.length === 1 && row[0] === '')) rows.push(row); // skip blank lines
    row = [];
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') (field += '"'), i++;
        else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') (row.push(field), (field = ''));
    else if (ch === '\n') endRow();
    else if (ch !== '\r') field += ch;
  }
  if (quoted) throw new MedsegIoError('CORRUPT', 'unterminated quoted field', path);
  if (field !== '' || row.length) endRow();
  const width = rows[0]?.length ?? 0;
  rows.forEach((r, k) => {
    if (r.length !== width) throw new MedsegIoError('BAD_DATA', `CSV line ${k + 1} has ${r.length} fields, the header has ${width}`, path);
  });
  return rows;
}

/** Header + records as objects. */
export async function readCsv(path: string): Promise<{ header: string[]; records: Record<string, string>[] }> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_CSV_BYTES) throw new MedsegIoError('TOO_LARGE', `CSV file larger than ${MAX_CSV_BYTES / 1024 ** 2} MiB`, path);
    text = buf.toString('utf8');
  } catch (e) {
    throw e instanceof MedsegIoError ? e : fsError(e, path);
  }
  const rows = parseCsv(text, path);
  if (rows.length === 0) throw new MedsegIoError('BAD_DATA', 'CSV file is empty (expected a header line)', path);
  const header = rows[0]!.map((h) => h.trim());
  return { header, records: rows.slice(1).map((r) => Object.fromEntries(header.map((h, j) => [h, r[j]!.trim()]))) };
}
