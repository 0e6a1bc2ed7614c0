import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PacsMalformedError } from './errors.ts';
import { boundaryOf, buildMultipart, parseMediaType, parseMultipart } from './multipart.ts';

const malformed = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof PacsMalformedError && re.test(e.message), String(re));

test('media types: parameters as tokens or quoted strings, names case-insensitive', () => {
  assert.deepEqual(parseMediaType('Multipart/Related; type="application/dicom"; Boundary=abc-123'), {
    type: 'multipart/related',
    params: { type: 'application/dicom', boundary: 'abc-123' },
  });
  assert.deepEqual(parseMediaType('multipart/related;boundary="a \\"quoted\\" b; c";type=application/dicom').params, {
    boundary: 'a "quoted" b; c',
    type: 'application/dicom',
  });
  assert.equal(boundaryOf(parseMediaType('multipart/related; boundary="--=_Part 1.2"')), '--=_Part 1.2');
  malformed(() => parseMediaType('not a type'), /bad media type/);
  malformed(() => parseMediaType('multipart/related; boundary="open'), /unterminated/);
  malformed(() => boundaryOf(parseMediaType('multipart/related; type="application/dicom"')), /without a boundary/);
  malformed(() => boundaryOf(parseMediaType(`multipart/related; boundary=${'x'.repeat(71)}`)), /bad multipart boundary/);
  malformed(() => boundaryOf(parseMediaType('multipart/related; boundary="ends in space "')), /bad multipart boundary/);
});

test('binary parts come back byte for byte, whatever bytes they hold (CR, LF, dashes, the boundary minus a character)', () => {
  const tricky = Buffer.concat([Buffer.from('\r\n--\r\n\r\n'), randomBytes(5000), Buffer.from('\r\n--medseg-')]);
  const parts = [new Uint8Array(0), tricky, randomBytes(70_000), Buffer.from('--')];
  const { body, contentType } = buildMultipart(
    parts.map((b) => ({ contentType: 'application/dicom', body: b })),
    'application/dicom',
  );
  const mt = parseMediaType(contentType);
  assert.equal(mt.params.type, 'application/dicom');
  const back = parseMultipart(body, boundaryOf(mt));
  assert.equal(back.length, parts.length);
  back.forEach((p, i) => {
    assert.deepEqual(Buffer.from(p.body), Buffer.from(parts[i]!), `part ${i}`);
    assert.deepEqual(p.headers, { 'content-type': 'application/dicom' });
  });
});

test('preamble, epilogue, transport padding and header-less parts are what RFC 2046 allows', () => {
  const body = Buffer.from(
    'This is the preamble.\r\n--b1  \r\nContent-Type: application/dicom\r\nContent-Location: x\r\n\r\nONE\r\n--b1\r\n\r\nTWO\r\n--b1--\t\r\nepilogue --b1\r\n',
    'latin1',
  );
  const parts = parseMultipart(body, 'b1');
  assert.deepEqual(
    parts.map((p) => Buffer.from(p.body).toString()),
    ['ONE', 'TWO'],
  );
  assert.deepEqual(parts[0]!.headers, { 'content-type': 'application/dicom', 'content-location': 'x' });
  assert.deepEqual(parts[1]!.headers, {});
  // A boundary that is only the start of a longer line inside the content is content.
  const inner = parseMultipart(Buffer.from('--b\r\n\r\nA\r\n--bb not a delimiter\r\n--b--'), 'b');
  assert.equal(Buffer.from(inner[0]!.body).toString(), 'A\r\n--bb not a delimiter');
});

test('malformed bodies are refused with the reason', () => {
  const ok = Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b--\r\n');
  assert.equal(parseMultipart(ok, 'b').length, 1);
  malformed(() => parseMultipart(ok, 'other'), /no multipart boundary/);
  malformed(() => parseMultipart(ok.subarray(0, ok.length - 9), 'b'), /not closed by a boundary/);
  malformed(() => parseMultipart(Buffer.from('--b\r\nContent-Type: application/dicom'), 'b'), /no end of its headers/);
  malformed(() => parseMultipart(Buffer.from('--b\r\nno colon here\r\n\r\nX\r\n--b--'), 'b'), /bad header line/);
  // "--bXY" and "--b junk" are no delimiters of "b": the first delimiter is the closing one, and no part precedes it.
  malformed(() => parseMultipart(Buffer.from('--bXY\r\n\r\nX\r\n--b--'), 'b'), /no part/);
  malformed(() => parseMultipart(Buffer.from('--b junk\r\n\r\nX\r\n--b--'), 'b'), /no part/);
  malformed(() => parseMultipart(Buffer.from('--b--\r\n'), 'b'), /no part/);
  malformed(() => parseMultipart(new Uint8Array(0), 'b'), /no multipart boundary/);
});
