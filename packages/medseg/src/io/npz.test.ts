/**
 * The .npz/.npy reader against numpy: arrays of every supported dtype, both
 * byte orders, Fortran order, savez and savez_compressed, and the real
 * PneumoniaMNIST file (shapes and checksums computed by numpy). Then fuzzing:
 * truncations, bit flips and hostile headers give arrays or MedsegIoErrors,
 * never another exception.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { zipSync } from 'fflate';
import { dataPath } from '../testing/data.ts';
import { runPythonJson } from '../testing/python.ts';
import { seededRandom } from '../util/random.ts';
import { MedsegIoError } from './errors.ts';
import { parseNpy } from './npy.ts';
import { parseNpz, readNpz } from './npz.ts';

const dir = mkdtempSync(join(tmpdir(), 'medseg-npz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAKE = `
import json, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
arrs = {
  'u1': rng.integers(0, 256, (3, 4, 5), dtype=np.uint8),
  'i1': rng.integers(-128, 128, (7,), dtype=np.int8),
  'u2be': rng.integers(0, 65536, (2, 3)).astype('>u2'),
  'i2': rng.integers(-30000, 30000, (4, 2), dtype=np.int16),
  'i4': rng.integers(-2**31, 2**31, (5,), dtype=np.int32),
  'u4': rng.integers(0, 2**32, (2, 2), dtype=np.uint32),
  'i8': rng.integers(-2**40, 2**40, (3,), dtype=np.int64),
  'f4be': rng.standard_normal((2, 3, 2)).astype('>f4'),
  'f8': rng.standard_normal((3, 3)),
  'b': rng.integers(0, 2, (4,)).astype(bool),
  'fortran': np.asfortranarray(rng.integers(0, 100, (3, 4, 2), dtype=np.int16)),
  'scalar': np.array(3.5, dtype=np.float32),
  'empty': np.zeros((0, 4), dtype=np.uint8),
}
np.savez(d + '/plain.npz', **arrs)
np.savez_compressed(d + '/compressed.npz', **arrs)
out = {k: {'shape': list(v.shape), 'dtype': v.dtype.name, 'values': [str(x) for x in np.ascontiguousarray(v).ravel().tolist()]} for k, v in arrs.items()}
print(json.dumps(out))
`;

interface Ref {
  shape: number[];
  dtype: string;
  values: string[];
}

function asStrings(data: ArrayLike<number | bigint>, dtype: string): string[] {
  return Array.from(data as ArrayLike<number | bigint>, (v) => {
    if (dtype === 'bool') return v ? 'True' : 'False';
    if (typeof v === 'bigint') return v.toString();
    return String(v);
  });
}

test('npz: every dtype, byte order and Fortran order matches numpy (savez and savez_compressed)', () => {
  const ref = runPythonJson<Record<string, Ref>>(['-c', MAKE, dir]);
  for (const file of ['plain.npz', 'compressed.npz']) {
    const got = readNpz(join(dir, file));
    assert.deepEqual([...got.keys()].sort(), Object.keys(ref).sort());
    for (const [k, r] of Object.entries(ref)) {
      const a = got.get(k)!;
      assert.equal(a.dtype, r.dtype, `${file} ${k} dtype`);
      assert.deepEqual(a.shape, r.shape, `${file} ${k} shape`);
      const vals = asStrings(a.data, a.dtype);
      if (r.dtype.startsWith('float')) {
        vals.forEach((v, i) => assert.ok(Math.abs(Number(v) - Number(r.values[i])) <= 1e-6 * Math.max(1, Math.abs(Number(r.values[i]))), `${file} ${k}[${i}]`));
      } else {
        assert.deepEqual(vals, r.values, `${file} ${k} values`);
      }
    }
  }
  // Only the asked keys are decoded; a missing key is a typed error.
  assert.deepEqual([...readNpz(join(dir, 'compressed.npz'), { keys: ['u1'] }).keys()], ['u1']);
  assert.throws(
    () => readNpz(join(dir, 'plain.npz'), { keys: ['nope'] }),
    (e) => e instanceof MedsegIoError && e.code === 'BAD_DATA',
  );
});

test('npz: PneumoniaMNIST reads as numpy reads it (shapes, label counts, pixel sums)', () => {
  const path = dataPath('pneumoniamnist', 'pneumoniamnist.npz');
  const ref = runPythonJson<Record<string, { shape: number[]; sum: number; ones: number }>>([
    '-c',
    `import json, sys, numpy as np
z = np.load(sys.argv[1])
print(json.dumps({k: {'shape': list(z[k].shape), 'sum': int(z[k].astype(np.int64).sum()), 'ones': int((z[k] == 1).sum())} for k in z.files}))`,
    path,
  ]);
  const got = readNpz(path);
  for (const [k, r] of Object.entries(ref)) {
    const a = got.get(k)!;
    assert.deepEqual(a.shape, r.shape, k);
    let sum = 0;
    let ones = 0;
    for (const v of a.data as Uint8Array) {
      sum += v;
      if (v === 1) ones++;
    }
    assert.equal(sum, r.sum, `${k} sum`);
    assert.equal(ones, r.ones, `${k} ones`);
  }
});

function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const lenBytes = version === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lenBytes + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, h.length, true);
  else view.setUint32(8, h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(data, 8 + lenBytes + h.length);
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof MedsegIoError) return e.code;
    throw e;
  }
}

test('npy: hostile headers give typed errors', () => {
  const d = new Uint8Array(16);
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (4, 4), }", d))),
    'ok',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (4, 4), }", d, 2))),
    'ok',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (5, 4), }", d))),
    'TRUNCATED',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", d))),
    'UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", d))),
    'UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (-1,), }", d))),
    'BAD_DATA',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", d))),
    'TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes('not a dict', d))),
    'BAD_DATA',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'shape': (4,), }", d))),
    'BAD_DATA',
  );
  assert.equal(
    codeOf(() => parseNpy(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }", d, 9))),
    'UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parseNpy(new TextEncoder().encode('PK\u0003\u0004 not npy at all'))),
    'BAD_MAGIC',
  );
  // A header length pointing past the end.
  const long = npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }", d);
  new DataView(long.buffer).setUint16(8, 60000, true);
  assert.equal(
    codeOf(() => parseNpy(long)),
    'TRUNCATED',
  );
  // A zip entry that claims to inflate past the limits is refused before inflating.
  const zip = zipSync({ 'a.npy': npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (4000,), }", new Uint8Array(4000)) });
  assert.equal(
    codeOf(() => parseNpz(zip, undefined, { limits: { maxBytes: 1000 } })),
    'TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parseNpz(zip)),
    'ok',
  );
});

test('npz: truncated and bit-flipped archives give arrays or typed errors', () => {
  const files = [readFileSync(join(dir, 'compressed.npz')), readFileSync(join(dir, 'plain.npz'))];
  const rand = seededRandom(22);
  const codes = new Map<string, number>();
  const limits = { maxBytes: 1 << 24, maxDecompressedBytes: 1 << 25 };
  for (let i = 0; i < 400; i++) {
    const src = files[i % 2]!;
    let b = Uint8Array.from(src);
    if (i % 4 === 0) b = b.subarray(0, Math.floor(rand() * b.length));
    else {
      for (let f = 0; f < 1 + Math.floor(rand() * 8); f++) {
        const at = Math.floor(rand() * b.length);
        b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
      }
    }
    const code = codeOf(() => {
      for (const a of parseNpz(b, 'fuzz.npz', { limits }).values()) {
        assert.equal(
          a.data.length,
          a.shape.reduce((x, y) => x * y, 1),
        );
      }
    });
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  assert.ok((codes.get('TRUNCATED') ?? 0) + (codes.get('CORRUPT') ?? 0) > 50, `errors seen: ${JSON.stringify([...codes])}`);
});
