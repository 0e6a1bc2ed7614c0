/**
 * Compressed DICOM read speed, medseg (its npm WebAssembly codecs) vs pydicom
 * with gdcm's codecs (Debian python3-gdcm: its own lossless JPEG, CharLS,
 * OpenJPEG) in the same run, per transfer syntax.
 *
 * The series: the shared 3-slice 512² CT shifted by +1024 HU and stored as
 * unsigned 12-bit MR-style slices by medseg's writer (unsigned so that every
 * syntax, HTJ2K included, is made from the same samples), then compressed file
 * by file by Debian's tools as the tests do (dcmtk dcmcjpeg / dcmcjpls, gdcm
 * gdcmconv, OpenJPH ojph_compress). Each side reads the series into one
 * z-sorted volume: readDicomSeries vs dcmread + pixel_array + sort + stack.
 * gdcm 3.0 has no HTJ2K decoder, so that row's peer is OpenJPH's ojph_expand
 * on the same codestreams (one process per frame, as a PACS-side tool
 * decode would run) plus pydicom reading the uncompressed series.
 *
 * Each row also holds the largest difference between the two decodes
 * (0 for the lossless syntaxes, else the codecs' disagreement).
 * ratio = medseg_s / python_s (below 1: medseg is faster).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { T } from '../packages/medseg/src/io/dicom/dictionary.ts';
import { parseDicom } from '../packages/medseg/src/io/dicom/parse.ts';
import { readDicomSeries } from '../packages/medseg/src/io/dicom/series.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { median, PY_TIMED, secondsPerCall } from './lib/stats.ts';
import { compressSeries, missingTools, SYNTAX, TOOL, writeSeries, type Compression } from '../packages/medseg/src/testing/dicom-compressed.ts';

const ROUNDS = 5;
const REPEAT = 3;
const COMPRESSIONS: Compression[] = ['jpeg-lossless', 'jpeg-lossless-sv1', 'jpegls', 'jpegls-near', 'j2k', 'j2k-lossy', 'htj2k'];

export type CompressedRow = { medseg_s: number; python_s: number; ratio: number; peer: string; transfer_syntax: string; max_abs_diff: number };

const timeMedseg = (read: () => Promise<unknown>) => secondsPerCall(read, ROUNDS, REPEAT);

const PY = `
import json, sys, time
import numpy as np, pydicom
from pydicom.pixel_data_handlers import gdcm_handler, numpy_handler
pydicom.config.pixel_data_handlers = [numpy_handler, gdcm_handler]
cfg = json.loads(sys.stdin.read())

def read_series(dir_files):
    ds = [pydicom.dcmread(f) for f in dir_files]
    iop = np.array([float(x) for x in ds[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ds.sort(key=lambda d: float(np.dot(normal, [float(x) for x in d.ImagePositionPatient])))
    return np.stack([d.pixel_array for d in ds])

${PY_TIMED}

res = {}
for name, files in cfg['series'].items():
    read_series(files).astype('<f4').tofile(cfg['out'] + '/' + name + '.f32')
    res[name] = timed(lambda: read_series(files), cfg['rounds'], cfg['repeat'])
print(json.dumps(res))
`;

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f));
}

/** Seconds per series for OpenJPH's ojph_expand on each frame's codestream (median of ROUNDS). */
function timeOjphExpand(dir: string, work: string): number {
  const streams = files(dir).map((f, i) => {
    const frag = parseDicom(readFileSync(f), { path: f }).dataset.get(T.PixelData)!.fragments!;
    const p = join(work, `f${i}.j2c`);
    writeFileSync(p, Buffer.concat(frag));
    return p;
  });
  const times: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (const s of streams) {
      const x = spawnSync('ojph_expand', ['-i', s, '-o', `${s}.raw`]);
      if (x.status !== 0) throw new Error(`ojph_expand ${s}: ${x.stderr}`);
    }
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

export async function run(): Promise<Record<string, CompressedRow>> {
  const missing = missingTools(['dcmcjpeg', 'dcmcjpls', 'gdcmconv', 'ojph_compress', 'ojph_expand']);
  if (missing.length) throw new Error(`the compressed-read rows need ${missing.join(', ')} (bash scripts/setup.sh test)`);
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-bench-dcm-'));
  try {
    const ct = await readDicomSeries(dataPath('dcmqi-ct-dicomseg', 'ct-3slice'));
    const shifted = { ...ct, data: Float32Array.from(ct.data, (v) => v + 1024) };
    const native = join(tmp, 'native');
    writeSeries(shifted, native, { bitsAllocated: 16, bitsStored: 12, seriesUID: '2.25.7301', modality: 'CT' });
    const series: Record<string, string[]> = { native: files(native) };
    for (const c of COMPRESSIONS) {
      compressSeries(c, native, join(tmp, c));
      series[c] = files(join(tmp, c));
    }
    const pyOut = join(tmp, 'py');
    mkdirSync(pyOut);
    const py = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', PY], {
        input: JSON.stringify({
          series: Object.fromEntries(Object.entries(series).filter(([k]) => k !== 'htj2k')),
          rounds: ROUNDS,
          repeat: REPEAT,
          out: pyOut,
        }),
        maxBuffer: 1 << 24,
      }).toString(),
    ) as Record<string, number>;
    const pyVoxels = (name: string) => {
      const b = readFileSync(join(pyOut, `${name}.f32`));
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    const result: Record<string, CompressedRow> = {};
    for (const c of COMPRESSIONS) {
      const dir = join(tmp, c);
      const medseg = await timeMedseg(() => readDicomSeries(dir));
      const v = await readDicomSeries(dir);
      let peer: string;
      let python: number;
      let ref: Float32Array;
      if (c === 'htj2k') {
        const work = join(tmp, 'ojph');
        mkdirSync(work);
        python = timeOjphExpand(dir, work) + py.native!;
        peer = 'ojph_expand per frame + pydicom reading the uncompressed series (gdcm 3.0 has no HTJ2K decoder)';
        ref = pyVoxels('native');
      } else {
        python = py[c]!;
        peer = 'pydicom 2 + gdcm codecs (python3-gdcm)';
        ref = pyVoxels(c);
      }
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(v.data[i]! - ref[i]!));
      if (ref.length !== v.data.length) throw new Error(`${c}: ${v.data.length} voxels vs ${ref.length} from the peer`);
      result[`dicom_read_${c}_ct_3x512x512_u12`] = {
        medseg_s: +medseg.toFixed(5),
        python_s: +python.toFixed(5),
        ratio: +(medseg / python).toFixed(3),
        peer,
        transfer_syntax: `${SYNTAX[c]} (made by ${TOOL[c]})`,
        max_abs_diff: maxDiff,
      };
    }
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
