/**
 * CSV in and out: the one place medseg formats and parses CSV text.
 *
 * Writing quotes per RFC 4180: a field holding a comma, a double quote, CR or
 * LF is enclosed in double quotes with inner quotes doubled. Records end with
 * LF (spreadsheets, Python's csv module, pandas and R read LF and CRLF alike).
 *
 * Spreadsheet formula injection: Excel, LibreOffice and Google Sheets treat a
 * cell starting with `=`, `+`, `-` or `@` (also after a leading tab or CR) as
 * a formula, so a case id, model name or file name like `=HYPERLINK(...)`
 * would run when the CSV is opened. Every text field starting with one of
 * those characters is written with a leading `'`, which spreadsheets show as
 * text. The value's type decides, not its spelling: JS numbers (negative ones,
 * NaN and ±Infinity included) are written as numbers and never prefixed.
 */

export type CsvValue = string | number | boolean | null | undefined;

export type CsvErrorCode = 'UNTERMINATED_QUOTE' | 'RAGGED_ROW';

/** Malformed CSV text (parsing) or rows of the wrong width (writing). */
export class CsvError extends Error {
  override readonly name = 'CsvError';
  constructor(
    readonly code: CsvErrorCode,
    message: string,
    /** 1-based line of the text where the offending record starts (parsing only). */
    readonly line?: number,
  ) {
    super(message);
  }
}

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One field: numbers as numbers, text guarded against formula injection, quoted when needed; null/undefined empty. */
export function csvField(v: CsvValue): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? (FORMULA_START.test(v) ? `'${v}` : v) : String(v);
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One record (no line terminator). */
export function csvRecord(values: readonly CsvValue[]): string {
  return values.map(csvField).join(',');
}

/** A header line and one line per row; every row must have the header's width. */
export function toCsv(header: readonly string[], rows: Iterable<readonly CsvValue[]>): string {
  const lines = [csvRecord(header)];
  let k = 0;
  for (const r of rows) {
    k++;
    if (r.length !== header.length) throw new CsvError('RAGGED_ROW', `CSV row ${k} has ${r.length} fields, the header has ${header.length}`);
    lines.push(csvRecord(r));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Records as CSV, one column per key: the given columns, or the union of the
 * records' keys in first-seen order. A key a record lacks is an empty field.
 */
export function recordsToCsv(records: readonly Readonly<Record<string, CsvValue>>[], columns?: readonly string[]): string {
  let cols = columns;
  if (!cols) {
    const seen = new Set<string>();
    for (const r of records) for (const k of Object.keys(r)) seen.add(k);
    cols = [...seen];
  }
  const header = cols;
  return toCsv(
    header,
    records.map((r) => header.map((c) => r[c])),
  );
}

/**
 * Parse CSV text into rows of fields (RFC 4180: quoted fields, doubled quotes,
 * line breaks inside quotes, CRLF or LF; a leading BOM is skipped). Blank lines
 * are skipped; every row must have the first row's width. Fields are returned
 * as written: a `'` added by the formula guard is kept.
 */
export function parseCsv(text: string): string[][] {
  const rows: { fields: string[]; line: number }[] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = () => {
    row.push(field);
    field = '';
    if (!(row.length === 1 && row[0] === '')) rows.push({ fields: row, line: rowLine });
    row = [];
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') line++;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') ((field += '"'), i++);
        else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') (row.push(field), (field = ''));
    else if (ch === '\n') (endRow(), (rowLine = line));
    else if (ch !== '\r') field += ch;
  }
  if (quoted) throw new CsvError('UNTERMINATED_QUOTE', `unterminated quoted field in the record starting on line ${rowLine}`, rowLine);
  if (field !== '' || row.length) endRow();
  const width = rows[0]?.fields.length ?? 0;
  for (const r of rows) {
    if (r.fields.length !== width) throw new CsvError('RAGGED_ROW', `CSV line ${r.line} has ${r.fields.length} fields, the header has ${width}`, r.line);
  }
  return rows.map((r) => r.fields);
}
