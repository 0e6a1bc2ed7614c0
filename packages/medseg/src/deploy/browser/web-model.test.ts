/**
 * The page-side model module, in Node: its metadata reader against the
 * onnx-proto schema package's decoding of a real export, its errors on bytes
 * that are not a medseg model, and its argmax against libtorch's. Running it
 * in Chromium is deploy/browser-onnx.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as torch from '@medseg/torch';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { browserImports } from '../../testing/browser-imports.ts';
import { exportModelFolder } from '../export-model.ts';
import { argmaxClasses, readModelInfo, readOnnxMetadata, WebModelError } from './web-model.ts';

test('readOnnxMetadata: the same entries as onnx-proto decodes from a real export; readModelInfo parses the medseg entry', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-web-model-'));
  try {
    const plan = writeFixtureModel(join(tmp, 'model'), 'mri3d', [{ weights: { best: 'random' } }]);
    const out = join(tmp, 'model.onnx');
    exportModelFolder(join(tmp, 'model'), out, { fold: 0 });
    const bytes = new Uint8Array(readFileSync(out));
    const decoded = onnxProto.onnx.ModelProto.decode(bytes);
    const want = Object.fromEntries((decoded.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    const got = readOnnxMetadata(bytes);
    assert.deepEqual(got, want);
    assert.deepEqual(Object.keys(got).sort(), ['medseg', 'medseg.architecture', 'medseg.version']);
    const info = readModelInfo(bytes);
    assert.equal(info.format, 'medseg.onnx/1');
    assert.deepEqual(info.patchSize, plan.patchSize);
    assert.deepEqual(info.labels, plan.labels);
    assert.deepEqual(info.normalization, plan.normalization);
    assert.deepEqual(info.targetSpacing, plan.targetSpacing);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('readOnnxMetadata / readModelInfo: clear errors on truncated bytes and on an ONNX model without medseg metadata', () => {
  // Field 14, length 200, but only 3 bytes follow.
  assert.throws(
    () => readOnnxMetadata(Uint8Array.from([0x72, 0xc8, 0x01, 1, 2, 3])),
    (e: unknown) => e instanceof WebModelError && /runs past the end/.test(e.message),
  );
  assert.throws(
    () => readOnnxMetadata(Uint8Array.from([0x08, 0xff])),
    (e: unknown) => e instanceof WebModelError && /truncated varint/.test(e.message),
  );
  const plain = onnxProto.onnx.ModelProto.encode({ irVersion: 8, metadataProps: [{ key: 'author', value: 'x' }] }).finish();
  assert.deepEqual(readOnnxMetadata(plain), { author: 'x' });
  assert.throws(
    () => readModelInfo(plain),
    (e: unknown) => e instanceof WebModelError && /no 'medseg' metadata/.test(e.message),
  );
});

test('argmaxClasses: equals libtorch argmax over the class axis of random logits [2, 3, 4, 5, 6]', () => {
  torch.tidy(() => {
    const logits = torch.randn([2, 3, 4, 5, 6]);
    const want = logits.argmax(1).to('uint8').toTypedArray() as Uint8Array;
    assert.deepEqual(argmaxClasses(logits.toFloat32Array(), logits.shape), want);
  });
});

test('browser modules stay browser-safe: their value imports, followed through the library, reach no Node module or npm package', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const roots = readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => join(here, f));
  const { modules, refused } = browserImports(roots);
  assert.ok(modules.length >= 3, `modules checked: ${modules.join(', ')}`);
  assert.deepEqual(refused, []);
});
