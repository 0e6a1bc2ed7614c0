/**
 * multipart/related bodies (RFC 2046 §5.1, RFC 2387) as DICOMweb uses them:
 * WADO-RS answers a series as one part per instance, STOW-RS takes instances
 * the same way. Parsing works on bytes (the parts are binary DICOM files and
 * may hold any byte sequence); the boundary comes from the Content-Type
 * header. A body that does not follow the grammar throws PacsMalformedError.
 */
import { randomBytes } from 'node:crypto';
import { PacsMalformedError } from './errors.ts';

export interface MediaType {
  /** type/subtype, lower case. */
  type: string;
  /** Parameters by lower-case name, quoted strings unquoted. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a Content-Type value (RFC 9110 §8.3.1): type/subtype *( ";" name=value ), values a token or a quoted string. */
export function parseMediaType(header: string): MediaType {
  const semi = header.indexOf(';');
  const type = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(type))
    throw new PacsMalformedError(`bad media type ${JSON.stringify(header.slice(0, 100))}`);
  const params: Record<string, string> = {};
  let i = semi < 0 ? header.length : semi + 1;
  while (i < header.length) {
    while (i < header.length && (header[i] === ' ' || header[i] === '\t' || header[i] === ';')) i++;
    if (i >= header.length) break;
    const eq = header.indexOf('=', i);
    if (eq < 0) throw new PacsMalformedError(`media type parameter without a value in ${JSON.stringify(header.slice(0, 100))}`);
    const name = header.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) throw new PacsMalformedError(`bad media type parameter name ${JSON.stringify(name)}`);
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      for (;;) {
        if (i >= header.length) throw new PacsMalformedError(`unterminated quoted string in ${JSON.stringify(header.slice(0, 100))}`);
        const c = header[i]!;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\' && i + 1 < header.length) i++;
        value += header.charAt(i);
        i++;
      }
    } else {
      const end = header.indexOf(';', i);
      value = (end < 0 ? header.slice(i) : header.slice(i, end)).trim();
      i = end < 0 ? header.length : end;
    }
    params[name] = value;
  }
  return { type, params };
}

export interface Part {
  /** Header fields by lower-case name. */
  headers: Record<string, string>;
  /** The part's content (a view into the body, not a copy). */
  body: Uint8Array;
}

const CRLF = Buffer.from('\r\n');
const BOUNDARY_CHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** The boundary of a multipart Content-Type, checked against RFC 2046's grammar (1-70 characters of a fixed set). */
export function boundaryOf(contentType: MediaType): string {
  const b = contentType.params.boundary;
  if (b === undefined) throw new PacsMalformedError(`${contentType.type} without a boundary parameter`);
  if (!BOUNDARY_CHARS.test(b)) throw new PacsMalformedError(`bad multipart boundary ${JSON.stringify(b.slice(0, 80))}`);
  return b;
}

/**
 * Splits a multipart body into its parts. The delimiter is CRLF "--" boundary
 * (the first one may open the body without the CRLF); what precedes the first
 * delimiter (the preamble) and follows the closing one (the epilogue) is
 * ignored. A delimiter line may end in spaces or tabs (transport padding).
 */
export function parseMultipart(body: Uint8Array, boundary: string): Part[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delim = Buffer.concat([CRLF, dash]);
  /** Index of the next delimiter's "--" at or after `from`, or -1; a match must be followed by "--", padding or CRLF. */
  const nextDelimiter = (from: number, first: boolean): number => {
    if (first && buf.subarray(0, dash.length).equals(dash) && delimiterEnds(buf, dash.length)) return 0;
    for (let at = buf.indexOf(delim, from); at >= 0; at = buf.indexOf(delim, at + 1)) {
      if (delimiterEnds(buf, at + delim.length)) return at + 2;
    }
    return -1;
  };
  let pos = nextDelimiter(0, true);
  if (pos < 0) throw new PacsMalformedError(`no multipart boundary "${boundary}" in the ${buf.length}-byte body`);
  const parts: Part[] = [];
  for (;;) {
    let i = pos + dash.length;
    if (buf[i] === 0x2d && buf[i + 1] === 0x2d) {
      // The closing delimiter; RFC 2046 requires at least one part before it.
      if (parts.length === 0) throw new PacsMalformedError('the multipart body has no part');
      return parts;
    }
    while (buf[i] === 0x20 || buf[i] === 0x09) i++;
    if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw new PacsMalformedError(`multipart delimiter at byte ${pos} is not followed by a line end`);
    const headStart = i + 2;
    let contentStart: number;
    let headers: Record<string, string>;
    if (buf[headStart] === 0x0d && buf[headStart + 1] === 0x0a) {
      headers = {};
      contentStart = headStart + 2;
    } else {
      const headEnd = buf.indexOf('\r\n\r\n', headStart, 'latin1');
      if (headEnd < 0) throw new PacsMalformedError(`multipart part ${parts.length + 1} has no end of its headers`);
      headers = parseHeaders(buf.toString('latin1', headStart, headEnd), parts.length + 1);
      contentStart = headEnd + 4;
    }
    const next = nextDelimiter(contentStart - 2, false);
    if (next < 0) throw new PacsMalformedError(`multipart part ${parts.length + 1} is not closed by a boundary (the body is cut short?)`);
    parts.push({ headers, body: buf.subarray(contentStart, next - 2) });
    pos = next;
  }
}

/** After a boundary: "--", or optional padding then CRLF. */
function delimiterEnds(buf: Buffer, at: number): boolean {
  if (buf[at] === 0x2d && buf[at + 1] === 0x2d) return true;
  while (buf[at] === 0x20 || buf[at] === 0x09) at++;
  return buf[at] === 0x0d && buf[at + 1] === 0x0a;
}

function parseHeaders(text: string, part: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon)))
      throw new PacsMalformedError(`bad header line ${JSON.stringify(line.slice(0, 80))} in multipart part ${part}`);
    out[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** A multipart/related body of the given parts, with a random boundary that occurs in none of them. */
export function buildMultipart(parts: { contentType: string; body: Uint8Array }[], type: string): { body: Buffer; contentType: string } {
  let boundary: string;
  do boundary = `medseg-${randomBytes(16).toString('hex')}`;
  while (parts.some((p) => Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength).includes(boundary, 0, 'latin1')));
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.contentType}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength));
    chunks.push(CRLF);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}
