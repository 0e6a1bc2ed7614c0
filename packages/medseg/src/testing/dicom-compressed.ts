/**
 * Test support for compressed DICOM: writes a volume as a single-frame DICOM
 * series (our writer, uncompressed), and compresses / decompresses series with
 * Debian's own tools (dcmtk, gdcm, OpenJPH), file by file, at test time. The
 * files are never committed; a missing tool is reported by name so a test can
 * skip with that message (scripts/setup.sh test installs them).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { T } from '../io/dicom/dictionary.ts';
import { parseDicom, TS } from '../io/dicom/parse.ts';
import { dataset, el, writeDicom } from '../io/dicom/write.ts';
import type { Mat3, Volume } from '../io/volume.ts';

/** Whether each command exists on PATH. */
export function missingTools(tools: string[]): string[] {
  return tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
}

/** A skip message for node:test when any tool is missing, else false. */
export function skipUnless(tools: string[]): string | false {
  const m = missingTools(tools);
  return m.length ? `needs ${m.join(', ')} (Debian dcmtk / libgdcm-tools / openjph-tools / dcm2niix: bash scripts/setup.sh test)` : false;
}

export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
}

export interface SeriesWriteOptions {
  bitsAllocated: 8 | 16;
  bitsStored: number;
  /** Rotation applied to the volume's direction (an oblique acquisition). */
  rotation?: Mat3;
  seriesUID: string;
  /** Write only slices [from, to) of the volume (keeps tool runs short). */
  zRange?: [number, number];
  modality?: string;
  photometric?: string;
}

function matmul(a: Mat3, b: Mat3): Mat3 {
  const o = new Array(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) o[3 * i + j] = o[3 * i + j]! + a[3 * i + k]! * b[3 * k + j]!;
  return o;
}

/** Rotation by `degZ` about z, then by `degX` about x. */
export function rotation(degZ: number, degX: number): Mat3 {
  const z = (degZ * Math.PI) / 180;
  const x = (degX * Math.PI) / 180;
  const rz: Mat3 = [Math.cos(z), -Math.sin(z), 0, Math.sin(z), Math.cos(z), 0, 0, 0, 1];
  const rx: Mat3 = [1, 0, 0, 0, Math.cos(x), -Math.sin(x), 0, Math.sin(x), Math.cos(x)];
  return matmul(rx, rz);
}

/**
 * Writes a one-channel volume as single-frame slices (MR Image Storage by
 * default), values rounded and clamped to BitsStored unsigned. Returns the
 * stored samples, z-major, for comparing decoders against.
 */
export function writeSeries(v: Volume, dir: string, o: SeriesWriteOptions): Uint16Array {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [nx, ny] = v.size;
  const [z0, z1] = o.zRange ?? [0, v.size[2]];
  const nz = z1 - z0;
  const d = o.rotation ? matmul(o.rotation, v.direction) : v.direction;
  const r = o.rotation;
  const origin = r ? [0, 1, 2].map((i) => r[3 * i]! * v.origin[0] + r[3 * i + 1]! * v.origin[1] + r[3 * i + 2]! * v.origin[2]) : v.origin;
  const max = 2 ** o.bitsStored - 1;
  const stored = new Uint16Array(nx * ny * nz);
  const off = z0 * nx * ny;
  for (let i = 0; i < stored.length; i++) stored[i] = Math.min(max, Math.max(0, Math.round(v.data[off + i]!)));
  for (let z = 0; z < nz; z++) {
    const pos = [0, 1, 2].map((r) => origin[r]! + (z0 + z) * v.spacing[2] * d[3 * r + 2]!);
    const slice = stored.subarray(z * nx * ny, (z + 1) * nx * ny);
    const px = o.bitsAllocated === 8 ? Uint8Array.from(slice) : new Uint8Array(Uint16Array.from(slice).buffer);
    const ds = dataset(
      el.str(T.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.4'),
      el.str(T.SOPInstanceUID, 'UI', `${o.seriesUID}.${z + 1}`),
      el.str(T.StudyDate, 'DA', '20260101'),
      el.str(T.StudyTime, 'TM', '120000'),
      el.str(T.Modality, 'CS', o.modality ?? 'MR'),
      el.str(T.PatientName, 'PN', 'Test^Compressed'),
      el.str(T.PatientID, 'LO', 'MEDSEG-TEST'),
      el.str(T.StudyInstanceUID, 'UI', `${o.seriesUID}.0`),
      el.str(T.SeriesInstanceUID, 'UI', o.seriesUID),
      el.nums(T.SeriesNumber, 'IS', [7]),
      el.nums(T.InstanceNumber, 'IS', [z + 1]),
      el.str(T.FrameOfReferenceUID, 'UI', `${o.seriesUID}.9`),
      el.nums(T.ImagePositionPatient, 'DS', pos),
      el.nums(T.ImageOrientationPatient, 'DS', [d[0], d[3], d[6], d[1], d[4], d[7]]),
      el.nums(T.PixelSpacing, 'DS', [v.spacing[1], v.spacing[0]]),
      el.nums(T.SliceThickness, 'DS', [v.spacing[2]]),
      el.nums(T.SamplesPerPixel, 'US', [1]),
      el.str(T.PhotometricInterpretation, 'CS', o.photometric ?? 'MONOCHROME2'),
      el.nums(T.Rows, 'US', [ny]),
      el.nums(T.Columns, 'US', [nx]),
      el.nums(T.BitsAllocated, 'US', [o.bitsAllocated]),
      el.nums(T.BitsStored, 'US', [o.bitsStored]),
      el.nums(T.HighBit, 'US', [o.bitsStored - 1]),
      el.nums(T.PixelRepresentation, 'US', [0]),
      el.bytes(T.PixelData, o.bitsAllocated === 8 ? 'OB' : 'OW', px),
    );
    writeFileSync(join(dir, `IM${String(z + 1).padStart(4, '0')}.dcm`), writeDicom(ds));
  }
  return stored;
}

export type Compression =
  | 'jpeg-baseline'
  | 'jpeg-extended'
  | 'jpeg-lossless'
  | 'jpeg-lossless-sv1'
  | 'jpegls'
  | 'jpegls-near'
  | 'jpegls-near-gdcm'
  | 'j2k'
  | 'j2k-lossy'
  | 'htj2k'
  | 'htj2k-rpcl'
  | 'htj2k-lossy';

/** Transfer syntax each compression writes. */
export const SYNTAX: Record<Compression, string> = {
  'jpeg-baseline': TS.JpegBaseline,
  'jpeg-extended': TS.JpegExtended,
  'jpeg-lossless': TS.JpegLossless,
  'jpeg-lossless-sv1': TS.JpegLosslessSV1,
  jpegls: TS.JpegLsLossless,
  'jpegls-near': TS.JpegLsNear,
  'jpegls-near-gdcm': TS.JpegLsNear,
  j2k: TS.J2kLossless,
  'j2k-lossy': TS.J2k,
  htj2k: TS.Htj2kLossless,
  'htj2k-rpcl': TS.Htj2kLosslessRpcl,
  'htj2k-lossy': TS.Htj2k,
};

/** The command each compression runs (for skip messages). */
export const TOOL: Record<Compression, string> = {
  'jpeg-baseline': 'dcmcjpeg',
  'jpeg-extended': 'dcmcjpeg',
  'jpeg-lossless': 'dcmcjpeg',
  'jpeg-lossless-sv1': 'dcmcjpeg',
  jpegls: 'dcmcjpls',
  'jpegls-near': 'dcmcjpls',
  'jpegls-near-gdcm': 'gdcmconv',
  j2k: 'gdcmconv',
  'j2k-lossy': 'gdcmconv',
  htj2k: 'ojph_compress',
  'htj2k-rpcl': 'ojph_compress',
  'htj2k-lossy': 'ojph_compress',
};

/** Arguments of the dcmtk / gdcm command for one file. */
function toolArgs(c: Compression, src: string, dst: string): [string, string[]] {
  switch (c) {
    case 'jpeg-baseline':
      return ['dcmcjpeg', ['+eb', src, dst]];
    case 'jpeg-extended':
      return ['dcmcjpeg', ['+ee', src, dst]];
    case 'jpeg-lossless':
      return ['dcmcjpeg', ['+el', '+sv', '6', src, dst]]; // process 14, predictor 6 (.57, not .70)
    case 'jpeg-lossless-sv1':
      return ['dcmcjpeg', ['+e1', src, dst]];
    case 'jpegls':
      return ['dcmcjpls', ['+el', src, dst]];
    case 'jpegls-near':
      return ['dcmcjpls', ['+en', '+md', '2', src, dst]];
    case 'jpegls-near-gdcm':
      return ['gdcmconv', ['--jpegls', '--lossy', '-e', '3', src, dst]];
    case 'j2k':
      return ['gdcmconv', ['--j2k', src, dst]];
    case 'j2k-lossy':
      return ['gdcmconv', ['--j2k', '--lossy', '--irreversible', '-r', '8', src, dst]];
    default:
      throw new Error(`${c} is not made by dcmtk/gdcm`);
  }
}

/** The native samples of an uncompressed single-frame file (signed or not), as written. */
function nativeFrame(path: string): { bytes: Uint8Array; rows: number; cols: number; bits: number; signed: boolean } {
  const f = parseDicom(readFileSync(path), { path });
  const ds = f.dataset;
  if (f.transferSyntaxUID !== TS.ExplicitLE && f.transferSyntaxUID !== TS.ImplicitLE) throw new Error(`${path}: not native little endian`);
  return {
    bytes: ds.get(T.PixelData)!.bytes,
    rows: ds.number(T.Rows)!,
    cols: ds.number(T.Columns)!,
    bits: ds.number(T.BitsStored)!,
    signed: ds.number(T.PixelRepresentation) === 1,
  };
}

/**
 * HTJ2K with OpenJPH's ojph_compress (Debian openjph-tools): the frame's
 * samples go in as raw, the codestream comes back and is encapsulated here
 * (no DICOM tool on Debian writes HTJ2K). Returns ojph_expand's decode of the
 * codestream as the reference for the lossy syntax.
 */
function htj2k(c: Compression, src: string, dst: string, work: string): Uint8Array {
  const f = nativeFrame(src);
  const bytesPer = f.bytes.length / (f.rows * f.cols);
  if (bytesPer !== 1 && bytesPer !== 2) throw new Error(`${src}: ${bytesPer} bytes per sample`);
  const raw = join(work, 'frame.yuv');
  const j2c = join(work, 'frame.j2c');
  // OpenJPH reads raw samples of 9+ bits as 16-bit little endian.
  writeFileSync(raw, f.bytes);
  const args = ['-i', raw, '-o', j2c, '-dims', `{${f.cols},${f.rows}}`, '-num_comps', '1', '-signed', String(f.signed)];
  args.push('-bit_depth', String(bytesPer === 1 ? 8 : f.bits), '-downsamp', '{1,1}', '-prog_order', c === 'htj2k-rpcl' ? 'RPCL' : 'LRCP');
  if (c === 'htj2k-lossy') args.push('-qstep', '0.002');
  else args.push('-reversible', 'true');
  run('ojph_compress', args);
  const stream = readFileSync(j2c);
  const back = join(work, 'back.yuv');
  run('ojph_expand', ['-i', j2c, '-o', back]);
  const decoded = readFileSync(back);
  const parsed = parseDicom(readFileSync(src), { path: src });
  const ds = parsed.dataset;
  ds.set({ tag: T.PixelData, vr: 'OB', bytes: new Uint8Array(0), littleEndian: true, fragments: [stream], offsetTable: new Uint8Array(0) });
  if (c === 'htj2k-lossy') ds.set(el.str(T.LossyImageCompression, 'CS', '01'));
  writeFileSync(dst, writeDicom(ds, { transferSyntaxUID: SYNTAX[c] }));
  return decoded;
}

/**
 * Compresses every file of `srcDir` into `dstDir`. For HTJ2K also returns
 * OpenJPH's own decode of each frame (file order), the lossy reference.
 */
export function compressSeries(c: Compression, srcDir: string, dstDir: string): Uint8Array[] {
  rmSync(dstDir, { recursive: true, force: true });
  mkdirSync(dstDir, { recursive: true });
  const refs: Uint8Array[] = [];
  if (c.startsWith('htj2k')) mkdirSync(dstDir + '.work', { recursive: true });
  for (const name of readdirSync(srcDir).sort()) {
    const src = join(srcDir, name);
    const dst = join(dstDir, name);
    if (c.startsWith('htj2k')) refs.push(htj2k(c, src, dst, dstDir + '.work'));
    else {
      const [cmd, args] = toolArgs(c, src, dst);
      run(cmd, args);
    }
  }
  rmSync(dstDir + '.work', { recursive: true, force: true });
  return refs;
}

/** Decompresses a series with the tool that made it (dcmdjpeg, dcmdjpls, gdcmconv --raw): the reference decode. */
export function decompressSeries(tool: 'dcmdjpeg' | 'dcmdjpls' | 'gdcmconv', srcDir: string, dstDir: string): void {
  rmSync(dstDir, { recursive: true, force: true });
  mkdirSync(dstDir, { recursive: true });
  for (const name of readdirSync(srcDir).sort()) {
    const args = tool === 'gdcmconv' ? ['--raw', join(srcDir, name), join(dstDir, name)] : [join(srcDir, name), join(dstDir, name)];
    run(tool, args);
  }
}

/** Copies single files of `srcDir` into `dstDir` through a function of their bytes. */
export function mapSeries(srcDir: string, dstDir: string, fn: (bytes: Uint8Array, name: string) => Uint8Array): void {
  rmSync(dstDir, { recursive: true, force: true });
  mkdirSync(dstDir, { recursive: true });
  for (const name of readdirSync(srcDir).sort()) writeFileSync(join(dstDir, name), fn(readFileSync(join(srcDir, name)), name));
}
