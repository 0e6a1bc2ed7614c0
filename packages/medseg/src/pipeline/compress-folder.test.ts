/**
 * Compression with fine-tuning, as `medseg compress` runs it, on a fixture
 * model folder (a small 3D U-Net, seeded random weights) with a tiny dataset
 * of five real MSD hippocampus cases split 3 / 2: magnitude pruning whose
 * zeros stay zero through a few seconds of fine-tuning while the other
 * weights move, structured pruning whose smaller network is trained and
 * exported smaller, the records in the ONNX metadata, and the compressed
 * model's card with ΔDice and the quality gate consistent with the per-case
 * scores.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { importPairedFolders } from '../data/import.ts';
import { readOnnxMetadata } from '../deploy/onnx-builder.ts';
import type { PruneSummary } from '../deploy/prune.ts';
import { modelFile } from '../plan/model-folder.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { tinyHippocampusModel } from '../testing/tiny-hippocampus.ts';
import { runMedseg } from '../testing/cli.ts';
import { compressedCardPaths, compressModelFolder } from './compress-folder.ts';
import { FineTuneError } from './finetune-pruned.ts';

const { onnx } = onnxProto;
const quiet = { start() {}, update() {}, stop() {} };

/** Float initializers of an ONNX model by name. */
function weights(bytes: Uint8Array): Map<string, { dims: number[]; data: Float32Array }> {
  const m = onnx.ModelProto.decode(bytes);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of m.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || !t.rawData?.length) continue;
    const copy = Uint8Array.from(t.rawData);
    out.set(t.name ?? '', { dims: (t.dims ?? []).map(Number), data: new Float32Array(copy.buffer) });
  }
  return out;
}

describe('compress with fine-tuning and a model card', () => {
  let tmp: string;
  let model: string;
  let dataset: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-compress-finetune-'));
    ({ model, dataset } = await tinyHippocampusModel(tmp));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('magnitude pruning + 2 s fine-tuning: the zeros stay, the other weights train, the record is in the metadata and the card', async (t) => {
    const plain = join(tmp, 'pruned.onnx');
    const tuned = join(tmp, 'tuned.onnx');
    await compressModelFolder(model, plain, { prune: { sparsity: 0.5 }, timedPasses: 0, card: false });
    const r = await compressModelFolder(model, tuned, { prune: { sparsity: 0.5 }, dataset, fineTune: { minutes: 0.03, progress: quiet }, timedPasses: 2 });
    const f = r.pruning!.fineTuned;
    assert.ok(f, 'fine-tuned');
    assert.ok(f.iterations > 0 && f.epochs >= 1, JSON.stringify(f));
    assert.ok(f.minutes < 0.03 + 0.5, `fine-tuning took ${f.minutes} min for a 0.03 min budget`);
    assert.equal(f.trainingCases, 3);
    assert.equal(f.validationCases, 2);
    const a = weights(readFileSync(plain));
    const b = weights(readFileSync(tuned));
    let moved = 0;
    for (const l of r.pruning!.layers!) {
      const wa = a.get(l.name)!.data;
      const wb = b.get(l.name)!.data;
      for (let i = 0; i < wa.length; i++) {
        if (wa[i] === 0) assert.equal(wb[i], 0, `${l.name}[${i}] was pruned and came back`);
        else if (wa[i] !== wb[i]) moved++;
      }
    }
    assert.ok(moved > 0, 'fine-tuning changed the kept weights');
    assert.equal(
      f.maskedZeros,
      r.pruning!.layers!.reduce((s, l) => s + l.zeros, 0),
    );
    const meta = readOnnxMetadata(readFileSync(tuned));
    const record = JSON.parse(meta['medseg.pruning']!) as PruneSummary;
    assert.deepEqual(record.fineTuned, JSON.parse(JSON.stringify(f)));
    assert.ok(meta.medseg, 'the preprocessing metadata stays');

    const ev = r.evaluation!;
    assert.equal(ev.cases, 2);
    const mean = ev.perCase.reduce((s, c) => s + c.delta, 0) / ev.perCase.length;
    assert.ok(Math.abs(ev.deltaDice.mean - mean) < 1e-12);
    assert.equal(ev.deltaDice.worst, Math.min(...ev.perCase.map((c) => c.delta)));
    for (const g of ev.gates) assert.equal(g.mean, ev.dice.compressed.mean >= g.fraction * ev.dice.original.mean);
    const card = compressedCardPaths(tuned);
    assert.equal(r.card?.markdownPath, card.markdown);
    const md = readFileSync(card.markdown, 'utf8');
    assert.match(md, /## Compressed model/);
    assert.match(md, /fine-tuned/);
    assert.match(md, /≥ 99\.9 %/);
    const json = JSON.parse(readFileSync(card.json, 'utf8'));
    assert.equal(json.compression.dice.delta.mean, ev.deltaDice.mean);
    assert.equal(json.compression.bytes.compressed, readFileSync(tuned).length);
    t.diagnostic(`fine-tune ${JSON.stringify(f)}; ΔDice mean ${ev.deltaDice.mean.toFixed(4)} worst ${ev.deltaDice.worst.toFixed(4)}`);
  });

  test('structured pruning + fine-tuning through the CLI: a smaller network trained and exported, the card beside it', () => {
    const out = join(tmp, 'small.onnx');
    const r = runMedseg([
      'compress',
      model,
      '--prune',
      '0.5',
      '--structured',
      '--finetune-minutes',
      '0.03',
      '--dataset',
      dataset,
      '--timed-passes',
      '0',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /fine-tuned .* min: \d+ epochs, [1-9]\d* steps/);
    assert.match(r.stdout, /ΔDice mean/);
    const meta = readOnnxMetadata(readFileSync(out));
    const record = JSON.parse(meta['medseg.pruning']!) as PruneSummary;
    assert.equal(record.kind, 'channels');
    assert.ok(record.fineTuned && record.fineTuned.iterations > 0);
    const full = weights(readFileSync(join(tmp, 'pruned.onnx')));
    const small = weights(readFileSync(out));
    const g = record.groups![0]!;
    assert.equal(small.get(g.producers[0]!)!.dims[0], g.after);
    assert.ok(g.after < full.get(g.producers[0]!)!.dims[0]!);
    assert.ok(existsSync(compressedCardPaths(out).markdown));
  });

  test('bad input: fine-tuning without pruning or dataset, a dataset without the split cases', async () => {
    const out = join(tmp, 'x.onnx');
    await assert.rejects(compressModelFolder(model, out, { int8: { dataset }, dataset, fineTune: { minutes: 1 } }), /fine-tuning follows pruning/);
    await assert.rejects(compressModelFolder(model, out, { prune: { sparsity: 0.3 }, fineTune: { minutes: 1 } }), /needs the dataset/);
    const other = await importPairedFolders(join(tmp, 'src/images'), join(tmp, 'src/labels'), join(tmp, 'other'), { name: 'other', channelNames: ['MRI'] });
    const badModel = join(tmp, 'model-bad');
    writeFixtureModel(badModel, 'mri3d', [{ weights: { best: 'random' } }]);
    writeFileSync(modelFile(badModel, 'splits'), JSON.stringify([{ train: ['nope_1'], val: ['nope_2'] }]));
    await assert.rejects(
      compressModelFolder(badModel, out, { prune: { sparsity: 0.3 }, dataset: other, fineTune: { minutes: 1, progress: quiet } }),
      (e: unknown) => e instanceof FineTuneError && /does not have/.test(e.message),
    );
    assert.ok(!existsSync(out), 'nothing written');
  });
});
