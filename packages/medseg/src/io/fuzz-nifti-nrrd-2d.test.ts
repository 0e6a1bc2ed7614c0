/**
 * Fuzz the NIfTI, NRRD and 2D readers with mutated real files (bit flips,
 * truncation, header field overwrites, random bytes). Every case must give a
 * structurally valid Volume or a MedsegIoError. Each format runs in a worker
 * thread so that a hang (a synchronous infinite loop) is caught by a timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { gunzipSync, gzipSync } from 'node:zlib';
import { dataPath } from '../testing/data.ts';
import { seededRandom } from '../util/random.ts';
import { MedsegIoError } from './errors.ts';
import { decodeImage2d } from './image2d.ts';
import { encodeNifti, parseNifti } from './nifti.ts';
import { encodeNrrd, parseNrrd } from './nrrd.ts';
import type { Volume } from './volume.ts';
import { runPythonJson } from '../testing/python.ts';

type Format = 'nifti' | 'nrrd' | 'image2d';
interface Job {
  format: Format;
  seeds: string[];
  cases: number;
  seed: number;
}
interface Result {
  ok: number;
  codes: Record<string, number>;
  failures: string[];
  done: number;
}

const LIMITS = { maxBytes: 64 << 20, maxDecompressedBytes: 128 << 20 };

function validVolume(v: Volume): string | null {
  const n = v.size[0] * v.size[1] * v.size[2] * v.channels;
  if (!v.size.every((s) => Number.isInteger(s) && s >= 1)) return `bad size ${v.size}`;
  if (!Number.isInteger(v.channels) || v.channels < 1) return `bad channels ${v.channels}`;
  if (v.data.length !== n) return `data length ${v.data.length} != ${n}`;
  if (!v.spacing.every((s) => Number.isFinite(s) && s > 0)) return `bad spacing ${v.spacing}`;
  if (!v.origin.every(Number.isFinite) || !v.direction.every(Number.isFinite)) return 'non-finite geometry';
  return null;
}

/** NIfTI header fields worth overwriting: [offset, kind] for v1 and v2. */
const NIFTI_FIELDS: Array<[number, 'i16' | 'i32' | 'f32' | 'f64' | 'i64']> = [
  [0, 'i32'],
  [40, 'i16'],
  [42, 'i16'],
  [44, 'i16'],
  [46, 'i16'],
  [48, 'i16'],
  [70, 'i16'],
  [72, 'i16'],
  [76, 'f32'],
  [80, 'f32'],
  [84, 'f32'],
  [108, 'f32'],
  [112, 'f32'],
  [116, 'f32'],
  [252, 'i16'],
  [254, 'i16'],
  [256, 'f32'],
  [260, 'f32'],
  [280, 'f32'],
  [284, 'f32'],
  [296, 'f32'],
  [316, 'f32'],
  [344, 'i32'],
  [16, 'i64'],
  [24, 'i64'],
  [32, 'i64'],
  [168, 'i64'],
  [104, 'f64'],
  [112, 'f64'],
  [400, 'f64'],
  [12, 'i16'],
];
const NASTY = [
  0,
  -1,
  1,
  2,
  3,
  7,
  16,
  255,
  256,
  348,
  352,
  540,
  32767,
  -32768,
  65535,
  2 ** 31 - 1,
  -(2 ** 31),
  1e30,
  -1e-30,
  NaN,
  Infinity,
  -Infinity,
  0.5,
  1536,
  100000,
];

function mutate(buf: Uint8Array, format: Format, r: () => number): Buffer {
  const b = Buffer.from(buf);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  const op = Math.floor(r() * 5);
  const headerLen = Math.min(b.length, format === 'nifti' ? 544 : format === 'nrrd' ? 600 : 256);
  if (op === 0) {
    // bit flips, mostly in the header
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) {
      const at = Math.floor(r() * (r() < 0.7 ? headerLen : b.length));
      b[at]! ^= 1 << Math.floor(r() * 8);
    }
    return b;
  }
  if (op === 1) return b.subarray(0, Math.floor(r() * b.length));
  if (op === 2 && format === 'nifti') {
    const [off, kind] = pick(NIFTI_FIELDS);
    const v = pick(NASTY);
    try {
      if (kind === 'i16') b.writeInt16LE(Math.trunc(v) | 0 ? Math.max(-32768, Math.min(32767, Math.trunc(v) || 0)) : 0, off);
      else if (kind === 'i32') b.writeInt32LE(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(v) || 0)), off);
      else if (kind === 'f32') b.writeFloatLE(v, off);
      else if (kind === 'f64') b.writeDoubleLE(v, off);
      else b.writeBigInt64LE(BigInt(Math.trunc(Number.isFinite(v) ? v : 2 ** 50)), off);
    } catch {
      /* offset past a short buffer */
    }
    return b;
  }
  if (op === 2 && format === 'nrrd') {
    const text = b.toString('latin1');
    const end = text.indexOf('\n\n');
    if (end < 0) return b;
    const lines = text.slice(0, end).split('\n');
    const i = 1 + Math.floor(r() * (lines.length - 1));
    const line = lines[i]!;
    const key = line.split(': ')[0]!;
    const values = [
      '',
      'none',
      '(nan,0,0) (0,1,0) (0,0,1)',
      '(0,0,0) (0,0,0) (0,0,0)',
      '100000 100000 100000',
      '-3',
      'big',
      'bzip2',
      'double',
      '2',
      '4',
      'raw',
      'ascii',
      'right-anterior-superior',
      '1e308',
      '(1,2)',
      'vector domain domain',
      '3 3 3 3',
    ];
    lines[i] = r() < 0.2 ? '' : r() < 0.1 ? `${key}:=${pick(values)}` : `${key}: ${pick(values)}`;
    return Buffer.concat([Buffer.from(lines.join('\n'), 'latin1'), b.subarray(end)]);
  }
  if (op === 2) {
    // 2D: overwrite header bytes with nasty little-/big-endian numbers
    const at = Math.floor(r() * headerLen);
    const v = Math.floor(r() * 2 ** 32);
    if (at + 4 <= b.length) r() < 0.5 ? b.writeUInt32BE(v, at) : b.writeUInt32LE(v, at);
    return b;
  }
  if (op === 3) {
    // a run of random bytes
    const at = Math.floor(r() * b.length);
    const n = Math.min(b.length - at, 1 + Math.floor(r() * 64));
    for (let i = 0; i < n; i++) b[at + i] = Math.floor(r() * 256);
    return b;
  }
  // keep the first bytes (magic), random rest
  const keep = Math.min(b.length, Math.floor(r() * 32));
  const out = Buffer.alloc(Math.floor(r() * 4096) + keep);
  b.copy(out, 0, 0, keep);
  for (let i = keep; i < out.length; i++) out[i] = Math.floor(r() * 256);
  return out;
}

function runJob(job: Job, progress: (done: number) => void): Result {
  const r = seededRandom(job.seed);
  const seeds = job.seeds.map((p) => readFileSync(p));
  // mutate uncompressed NIfTI so header mutations reach the parser; gzip again half the time
  const plain: Uint8Array[] = seeds.map((s) => (job.format === 'nifti' && s[0] === 0x1f ? gunzipSync(s) : s));
  if (job.format === 'nrrd') plain.push(encodeNrrd(parseNrrd(plain[0]!), { encoding: 'raw' }));
  if (job.format === 'nifti') plain.push(encodeNifti(parseNifti(plain[0]!), { version: 2 }), encodeNifti(parseNifti(plain[3]!), { version: 2 }));
  const res: Result = { ok: 0, codes: {}, failures: [], done: 0 };
  for (let c = 0; c < job.cases; c++) {
    const k = Math.floor(r() * plain.length);
    let input = mutate(plain[k]!, job.format, r);
    if (job.format === 'nifti' && r() < 0.4) input = gzipSync(input, { level: 1 });
    try {
      const v =
        job.format === 'nifti'
          ? parseNifti(input, { limits: LIMITS })
          : job.format === 'nrrd'
            ? parseNrrd(input, { limits: LIMITS })
            : decodeImage2d(input, { limits: LIMITS });
      const bad = validVolume(v);
      if (bad) res.failures.push(`case ${c} (seed file ${k}): invalid volume: ${bad}`);
      else res.ok++;
    } catch (e) {
      if (e instanceof MedsegIoError) res.codes[e.code] = (res.codes[e.code] ?? 0) + 1;
      else res.failures.push(`case ${c} (seed file ${k}): ${(e as Error)?.name}: ${(e as Error)?.message ?? String(e)}`.slice(0, 300));
    }
    res.done = c + 1;
    if (c % 50 === 0) progress(c);
  }
  return res;
}

if (!isMainThread) {
  const res = runJob(workerData as Job, (done) => parentPort!.postMessage({ progress: done }));
  parentPort!.postMessage({ result: res });
} else {
  const here = dirname(fileURLToPath(import.meta.url));
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-fuzz-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  function inWorker(job: Job, timeoutMs: number): Promise<Result> {
    return new Promise((resolve, reject) => {
      // the worker needs the TypeScript loader registered in its own thread
      const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
      const w = new Worker(boot, { eval: true, workerData: job });
      let last = -1;
      const timer = setTimeout(() => {
        void w.terminate();
        reject(new Error(`${job.format} fuzz hung or ran past ${timeoutMs} ms after case ${last}`));
      }, timeoutMs);
      w.on('message', (m: { progress?: number; result?: Result }) => {
        if (m.progress !== undefined) last = m.progress;
        if (m.result) {
          clearTimeout(timer);
          resolve(m.result);
          void w.terminate();
        }
      });
      w.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  const hippo = (sub: string) =>
    readdirSync(dataPath('msd-hippocampus', sub))
      .sort()
      .slice(0, 3)
      .map((f) => dataPath('msd-hippocampus', sub, f));
  let small: string[] | undefined;
  const smallImages = () => {
    small ??= runPythonJson<string[]>([join(here, 'pil_ref.py'), 'make', tmp]);
    return small;
  };

  const jobs: Array<[string, () => Job]> = [
    ['nifti', () => ({ format: 'nifti', seeds: [...hippo('images'), ...hippo('labels')], cases: 3000, seed: 1 })],
    [
      'nrrd',
      () => ({
        format: 'nrrd',
        seeds: [
          dataPath('pyradiomics-nrrd', 'breast1_label.nrrd'),
          dataPath('pyradiomics-nrrd', 'prostate_phantom_subvolume.nrrd'),
          dataPath('dcmqi-ct-dicomseg', 'sparse_labelmap_ppv5_seg.nrrd'),
        ],
        cases: 2000,
        seed: 2,
      }),
    ],
    [
      '2D (PNG, JPEG, TIFF, BMP, GIF)',
      () => ({
        format: 'image2d',
        seeds: [...smallImages(), dataPath('drive', 'training', 'mask', '21_training_mask.gif'), dataPath('isbi2012-em', 'masks', '0.png')],
        cases: 3000,
        seed: 3,
      }),
    ],
  ];
  for (const [name, make] of jobs) {
    test(`fuzz ${name}: every mutated file gives a valid Volume or a MedsegIoError`, async () => {
      const res = await inWorker(make(), 90_000);
      const summary = `ok ${res.ok}, errors ${JSON.stringify(res.codes)}`;
      assert.deepEqual(res.failures.slice(0, 10), [], summary);
      assert.ok(res.ok > 0 && Object.keys(res.codes).length >= 2, `fuzz should hit both outcomes: ${summary}`);
      console.log(`# fuzz ${name}: ${res.done} cases, ${summary}`);
    });
  }
}
