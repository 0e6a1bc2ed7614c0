/**
 * Subgroup tables for the statistics: a CSV keyed by case id (column case,
 * case_id, caseid, id or subject, else the first) with one column per
 * grouping (site, scanner, sex, ...). Unreadable, oversized or malformed
 * files are MedsegIoErrors naming the file.
 */
import { readFile } from 'node:fs/promises';
import { MedsegIoError } from '../io/errors.ts';
import { fsError } from '../io/limits.ts';
import { CsvError, parseCsv } from '../util/csv.ts';
import type { Subgroups } from './statistics/rows.ts';

const MAX_CSV_BYTES = 64 * 1024 ** 2;
const ID_COLUMN_NAMES = ['case', 'case_id', 'caseid', 'id', 'subject'];

/** Header and records (fields trimmed) of a CSV file. */
async function readCsvRecords(path: string): Promise<{ header: string[]; records: Record<string, string>[] }> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_CSV_BYTES) throw new MedsegIoError('TOO_LARGE', `CSV file larger than ${MAX_CSV_BYTES / 1024 ** 2} MiB`, path);
    text = buf.toString('utf8');
  } catch (e) {
    throw e instanceof MedsegIoError ? e : fsError(e, path);
  }
  let rows: string[][];
  try {
    rows = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) throw new MedsegIoError(e.code === 'UNTERMINATED_QUOTE' ? 'CORRUPT' : 'BAD_DATA', e.message, path);
    throw e;
  }
  if (rows.length === 0) throw new MedsegIoError('BAD_DATA', 'CSV file is empty (expected a header line)', path);
  const header = rows[0]!.map((h) => h.trim());
  return { header, records: rows.slice(1).map((r) => Object.fromEntries(header.map((h, j) => [h, r[j]!.trim()]))) };
}

/** Subgroups per case id and the group columns, from a subgroup CSV file. */
export async function readSubgroupsCsv(path: string): Promise<{ subgroups: Subgroups; columns: string[] }> {
  const { header, records } = await readCsvRecords(path);
  const idCol = header.find((h) => ID_COLUMN_NAMES.includes(h.toLowerCase())) ?? header[0]!;
  const columns = header.filter((h) => h !== idCol);
  if (columns.length === 0) throw new MedsegIoError('BAD_DATA', `subgroup CSV needs a case id column ("${idCol}") and at least one group column`, path);
  const subgroups: Subgroups = {};
  for (const r of records) {
    const id = r[idCol]!;
    if (!id) continue;
    subgroups[id] = Object.fromEntries(columns.map((c) => [c, r[c]!]));
  }
  return { subgroups, columns };
}
