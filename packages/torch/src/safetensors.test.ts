/**
 * safetensors against an independent reader and writer written here in Python
 * (struct + json + numpy, from the published format: u64 LE header length,
 * JSON header {name: {dtype, shape, data_offsets}}, raw LE bytes; the
 * safetensors pip package is not available offline). Then hostile files:
 * every one must give a SafetensorsError, leak no tensors, and leave the
 * process working.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as torch from './index.ts';
import type { Tensor } from './index.ts';
import { randintT, randnT } from './testing/inputs.ts';
import { RefSuite } from './testing/pyref.ts';

const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PY_READER = `import json, struct
ST = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8, 'U8': np.uint8, 'BOOL': np.bool_}
def read_st(path):
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    data = raw[8 + n:]
    meta = header.pop('__metadata__', {})
    spans = sorted(tuple(v['data_offsets']) for v in header.values())
    contiguous = spans[0][0] == 0 and spans[-1][1] == len(data) and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    tensors = {}
    for name, v in header.items():
        b, e = v['data_offsets']
        arr = np.frombuffer(data[b:e], dtype=np.dtype(ST[v['dtype']]).newbyteorder('<')).reshape(v['shape'])
        tensors[name] = (v['dtype'], torch.from_numpy(arr.copy()))
    return n, header, meta, tensors, contiguous
`;

// ---- ours -> Python ----------------------------------------------------------------------
const originals: Record<string, Tensor> = {
  'model.conv.weight': randnT([4, 3, 3, 3], 1),
  'model.conv.bias': randnT([4], 2, { dtype: 'float64' }),
  half: randnT([2, 5], 3).to('float16'),
  'bn.num_batches_tracked': torch.tensor([17], [], { dtype: 'int64' }),
  labels: randintT([3, 4], 4, -1000, 1000, 'int32'),
  small: randintT([7], 5, -100, 100, 'int16'),
  bytes: randintT([5], 6, -128, 128, 'int8'),
  mask: torch.tidy(() => randnT([3, 3], 7).gt(0)),
  u8: randintT([2, 2, 2], 8, 0, 256, 'uint8'),
  empty: torch.zeros([0, 3]),
  'ü-unicode name': torch.arange(4, undefined, 1, { dtype: 'float32' }),
};
for (const t of Object.values(originals)) t.keep();
const ourFile = join(dir, 'ours.safetensors');
torch.saveSafetensors(ourFile, originals, { format: 'pt', note: 'héllo' });
const names = Object.keys(originals).sort();
const ST_NAME: Record<string, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

const s = new RefSuite('safetensors: ');
s.check(
  'a file we write reads back in an independent Python reader: names, dtypes, shapes, values, metadata',
  {},
  `${PY_READER}
n, header, meta, tensors, contiguous = read_st(${JSON.stringify(ourFile)})
names = sorted(tensors)
out = (names, [tensors[k][0] for k in names], [str(list(tensors[k][1].shape)) for k in names], [tensors[k][1] for k in names],
       meta.get('format'), meta.get('note'), contiguous, (8 + n) % 8 == 0)`,
  () => [
    names,
    names.map((k) => ST_NAME[originals[k]!.dtype]!),
    names.map((k) => JSON.stringify(originals[k]!.shape).replace(/,/g, ', ')),
    names.map((k) => originals[k]!),
    'pt',
    'héllo',
    true,
    true,
  ],
  { rtol: 0, atol: 0 },
);

// ---- Python -> ours -----------------------------------------------------------------------
const pyFile = join(dir, 'python.safetensors');
s.check(
  'a file written by an independent Python writer (unaligned offsets, unsorted names) loads with the same values',
  {},
  `import json, struct
rng = np.random.default_rng(0)
items = [('odd_bytes', 'U8', np.arange(3, dtype=np.uint8)),
         ('weights', 'F32', rng.standard_normal((2, 3)).astype(np.float32)),
         ('alpha', 'F64', np.array(2.5)),
         ('idx', 'I64', np.array([[-1, 2], [3, 2 ** 40]], dtype=np.int64)),
         ('flags', 'BOOL', np.array([True, False, True])),
         ('h', 'F16', np.array([0.5, -2.0, 65504.0], dtype=np.float16)),
         ('i32', 'I32', np.array([-7, 8], dtype=np.int32))]
header = {'__metadata__': {'source': 'python'}}
blobs = []; off = 0
for name, dt, arr in items:
    b = arr.astype(arr.dtype.newbyteorder('<')).tobytes()
    header[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [off, off + len(b)]}
    blobs.append(b); off += len(b)
hj = json.dumps(header).encode('utf-8')
with open(${JSON.stringify(pyFile)}, 'wb') as f:
    f.write(struct.pack('<Q', len(hj))); f.write(hj); f.write(b''.join(blobs))
names = sorted(n for n, _, _ in items)
byname = {n: torch.from_numpy(a.copy()) for n, _, a in items}
out = (names, [byname[n] for n in names], 'python')`,
  () => {
    const { tensors, metadata } = torch.loadSafetensors(pyFile);
    const ns = [...tensors.keys()].sort();
    return [ns, ns.map((n) => tensors.get(n)!), metadata.source ?? ''];
  },
  { rtol: 0, atol: 0 },
);
s.run();

test('safetensors: round trip in TS keeps names, dtypes, shapes, values and metadata', () => {
  torch.tidy(() => {
    const { tensors, metadata } = torch.loadSafetensors(ourFile);
    assert.deepEqual([...tensors.keys()].sort(), names);
    for (const n of names) {
      const a = originals[n]!;
      const b = tensors.get(n)!;
      assert.equal(b.dtype, a.dtype, n);
      assert.deepEqual(b.shape, a.shape, n);
      assert.deepEqual(Array.from(b.toTypedArray() as ArrayLike<unknown>), Array.from(a.toTypedArray() as ArrayLike<unknown>), n);
    }
    assert.deepEqual(metadata, { format: 'pt', note: 'héllo' });
  });
});

test('safetensors: saving is atomic (no temp files left) and overwrites', () => {
  torch.tidy(() => {
    const f = join(dir, 'atomic.safetensors');
    torch.saveSafetensors(f, { a: torch.ones([2]) });
    torch.saveSafetensors(f, { b: torch.zeros([3]) });
    assert.deepEqual([...torch.loadSafetensors(f).tensors.keys()], ['b']);
    assert.ok(!readdirSync(dir).some((n) => n.includes('.tmp-')));
  });
});

// ---- hostile files ------------------------------------------------------------------------------
function fileWithHeader(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([head, json, data]);
}
const data16 = new Uint8Array(16);
const hostile: [string, Buffer][] = [
  ['empty file', Buffer.alloc(0)],
  ['shorter than the length field', Buffer.from([1, 2, 3])],
  ['header length past the end', fileWithHeader({}, data16, 10_000n)],
  ['header length 2^64 - 1', fileWithHeader({}, data16, 0xffffffffffffffffn)],
  ['header not JSON', fileWithHeader('{"a": ', data16)],
  ['header is an array', fileWithHeader([1, 2], data16)],
  ['unknown dtype', fileWithHeader({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, data16)],
  ['negative shape', fileWithHeader({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, data16)],
  ['fractional shape', fileWithHeader({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 6] } }, data16)],
  ['missing data_offsets', fileWithHeader({ a: { dtype: 'F32', shape: [4] } }, data16)],
  ['offsets past the data', fileWithHeader({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data16)],
  ['reversed offsets', fileWithHeader({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, data16)],
  ['wrong byte count for the shape', fileWithHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data16)],
  [
    'overlapping offsets',
    fileWithHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, data16),
  ],
  ['shape entry beyond int64 with zero elements', fileWithHeader({ a: { dtype: 'F32', shape: [0, 1e300], data_offsets: [0, 0] } }, data16)],
  [
    'zero-element shape whose size overflows',
    fileWithHeader({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30, 0], data_offsets: [0, 0] } }, data16),
  ],
  ['tensor entry is null', fileWithHeader({ a: null }, data16)],
  ['offsets are strings', fileWithHeader({ a: { dtype: 'F32', shape: [1], data_offsets: ['0', '4'] } }, data16)],
  ['huge shape (allocation bomb)', fileWithHeader({ a: { dtype: 'F64', shape: [1e6, 1e6, 1e6], data_offsets: [0, 16] } }, data16)],
];

test('safetensors: hostile files give SafetensorsError, leak nothing, and the process keeps working', () => {
  const live = torch.liveTensors();
  for (const [what, bytes] of hostile) {
    assert.throws(() => torch.parseSafetensors(bytes, what), torch.SafetensorsError, what);
    const f = join(dir, 'hostile.safetensors');
    writeFileSync(f, bytes);
    assert.throws(
      () => torch.loadSafetensors(f),
      (e: Error) => e instanceof torch.SafetensorsError && e.message.startsWith(f),
      `${what} (file)`,
    );
  }
  assert.equal(torch.liveTensors(), live, 'no tensor survives a failed load');
  torch.tidy(() => assert.equal(torch.loadSafetensors(ourFile).tensors.size, names.length));
});

test('safetensors: every truncation of a valid file is rejected cleanly', () => {
  const whole = torch.tidy(() =>
    torch.serializeSafetensors({ w: randnT([3, 5], 9), b: torch.ones([5], { dtype: 'float64' }), n: torch.tensor([1], [], { dtype: 'int64' }) }),
  );
  const live = torch.liveTensors();
  for (let n = 0; n < whole.length; n++) {
    assert.throws(() => torch.parseSafetensors(whole.subarray(0, n)), torch.SafetensorsError, `truncated to ${n} bytes`);
  }
  assert.equal(torch.liveTensors(), live);
  torch.tidy(() => assert.equal(torch.parseSafetensors(whole).tensors.size, 3));
});

test('safetensors: extra trailing bytes or a tensor left out of the data are detected or harmless', () => {
  torch.tidy(() => {
    // Trailing bytes after the last tensor do not corrupt what loads.
    const whole = torch.serializeSafetensors({ w: torch.arange(6, undefined, 1, { dtype: 'float32' }) });
    const padded = Buffer.concat([whole, Buffer.alloc(5, 7)]);
    const t = torch.parseSafetensors(padded).tensors.get('w')!;
    assert.deepEqual(t.toArray(), [0, 1, 2, 3, 4, 5]);
  });
});
