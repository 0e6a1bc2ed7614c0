/**
 * `medseg predict` writing DICOM results as a user runs it (a child process
 * per command): an RT Structure Set with --format rtstruct, a FRACTIONAL SEG
 * of the probabilities beside the DICOM SEG with --save-probabilities, codes
 * from --segment-codes, de-identified results whose UIDs match `medseg
 * deidentify` of the series with the same secret; every object passes dciodvfy. A small untrained
 * model folder whose head says class 1 everywhere, on synthetic DICOM slices.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DicomTags, parseDicom, readDicomSeg, readDicomSeries, readRtStruct, rtstructLabelmap, segMasks } from '../../io/dicom/index.ts';
import { runMedseg, type CliRun } from '../../testing/cli.ts';
import { dataPath } from '../../testing/data.ts';
import { dciodvfy, skipWithoutDciodvfy } from '../../testing/dciodvfy.ts';
import { synthSlice } from '../../testing/dicom-synth.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { EXIT_USAGE } from '../errors.ts';

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 180_000 });
}

function assertNoDciodvfyError(path: string): void {
  const r = dciodvfy(path);
  assert.deepEqual(r.errors, [], r.output);
}

describe('medseg predict: DICOM SEG / RTSTRUCT results', { skip: skipWithoutDciodvfy() }, () => {
  let tmp: string;
  let model: string;
  let study: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-dicom-'));
    model = join(tmp, 'ct-model');
    writeFixtureModel(model, 'ct3d', [{ weights: { final: 1 } }]);
    study = join(tmp, 'studyA');
    mkdirSync(study);
    for (const z of [0, 1, 2]) writeFileSync(join(study, `s${z}.dcm`), synthSlice({ z, rows: 6, columns: 7 }));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('--format rtstruct writes an RT Structure Set of the predicted labels', async () => {
    const out = join(tmp, 'rt');
    const r = medseg('predict', model, study, '--out', out, '--format', 'rtstruct');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out), ['studyA.rtstruct.dcm']);
    const path = join(out, 'studyA.rtstruct.dcm');
    assertNoDciodvfyError(path);
    const rt = await readRtStruct(path);
    assert.deepEqual(
      rt.rois.map((x) => [x.number, x.name, x.generationAlgorithm, x.algorithmName]),
      [
        [1, 'anterior', 'AUTOMATIC', 'ct-model (unet)'],
        [2, 'posterior', 'AUTOMATIC', 'ct-model (unet)'],
      ],
    );
    const source = await readDicomSeries(study);
    const labels = rtstructLabelmap(rt, source);
    assert.ok(
      labels.data.every((v) => v === 1),
      'the model says class 1 everywhere',
    );
    assert.equal(rt.rois[1]!.contours.length, 0);
  });

  test('--save-probabilities beside a DICOM SEG is a FRACTIONAL SEG; --segment-codes names and codes the segments', async () => {
    const codes = join(tmp, 'codes.json');
    const liver = { value: '10200004', scheme: 'SCT', meaning: 'Liver' };
    writeFileSync(
      codes,
      JSON.stringify({ '1': { label: 'Liver', category: { value: '91723000', scheme: 'SCT', meaning: 'Anatomical Structure' }, type: liver } }),
    );
    const out = join(tmp, 'seg');
    const r = medseg('predict', model, study, '--out', out, '--save-probabilities', '--segment-codes', codes);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['studyA.seg.dcm', 'studyA_probabilities.seg.dcm']);
    for (const f of readdirSync(out)) assertNoDciodvfyError(join(out, f));
    const source = await readDicomSeries(study);

    const seg = await readDicomSeg(join(out, 'studyA.seg.dcm'), { source });
    assert.equal(seg.segmentationType, 'BINARY');
    assert.deepEqual(
      seg.segments.map((s) => [s.label, s.type?.value, s.type?.meaning]),
      [
        ['Liver', '10200004', 'Liver'],
        ['posterior', '85756007', 'posterior'],
      ],
    );
    assert.equal(seg.segments[0]!.algorithmFamily?.value, '123110');

    const prob = await readDicomSeg(join(out, 'studyA_probabilities.seg.dcm'));
    assert.deepEqual([prob.segmentationType, prob.fractionalType, prob.maxFractionalValue], ['FRACTIONAL', 'PROBABILITY', 255]);
    // softmax([0, 10, 0]): class 1 rounds to 255/255; class 2 (4.5e-5) to 0, so its frames are left out.
    const p1 = Math.exp(10) / (Math.exp(10) + 2);
    assert.deepEqual(
      prob.frames.map((f) => f.segment),
      [1, 1, 1],
    );
    const masks = segMasks(prob, source);
    assert.ok(masks.get(1)!.data.every((v) => v === Math.round(p1 * 255) / 255));
    assert.ok(masks.get(2)!.data.every((v) => v === 0));
  });

  test('--deidentify --uid-secret-file: the SEGs and the RTSTRUCT reference the series as medseg deidentify with that secret writes it', async () => {
    const key = join(tmp, 'key.txt');
    writeFileSync(key, 'medseg-test-secret\n');
    const anon = join(tmp, 'studyA-anon');
    let r = medseg('deidentify', study, anon, '--uid-secret-file', key);
    assert.equal(r.status, 0, r.stderr);
    const source = await readDicomSeries(anon);
    const original = await readDicomSeries(study);
    assert.notEqual(source.meta.seriesInstanceUID, original.meta.seriesInstanceUID);

    const seg = join(tmp, 'seg-deid');
    r = medseg('predict', model, study, '--out', seg, '--save-probabilities', '--deidentify', '--uid-secret-file', key);
    assert.equal(r.status, 0, r.stderr);
    const rt = join(tmp, 'rt-deid');
    r = medseg('predict', model, study, '--out', rt, '--format', 'rtstruct', '--deidentify', '--uid-secret-file', key);
    assert.equal(r.status, 0, r.stderr);
    for (const path of [join(seg, 'studyA.seg.dcm'), join(seg, 'studyA_probabilities.seg.dcm'), join(rt, 'studyA.rtstruct.dcm')]) {
      assertNoDciodvfyError(path);
      const ds = parseDicom(readFileSync(path)).dataset;
      assert.equal(ds.string(DicomTags.PatientName), 'ANONYMOUS', path);
      assert.notEqual(ds.string(DicomTags.PatientID), original.meta.patientId, path);
      assert.equal(ds.string(DicomTags.StudyInstanceUID), source.meta.studyInstanceUID, path);
      assert.equal(ds.string(DicomTags.FrameOfReferenceUID), source.meta.frameOfReferenceUID, path);
    }
    // The readers place the results on the de-identified series by its new instance UIDs.
    const labels = segMasks(await readDicomSeg(join(seg, 'studyA.seg.dcm'), { source }), source);
    assert.ok(labels.get(1)!.data.every((v) => v === 1));
    const structures = await readRtStruct(join(rt, 'studyA.rtstruct.dcm'));
    assert.equal(structures.referencedSeriesInstanceUID, source.meta.seriesInstanceUID);
    assert.ok(rtstructLabelmap(structures, source).data.every((v) => v === 1));

    r = medseg('predict', model, study, '--out', join(tmp, 'z'), '--uid-secret-file', key);
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    assert.match(r.stderr, /--uid-secret-file goes with --deidentify/);
    r = medseg('predict', model, dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz'), '--out', join(tmp, 'z'), '--deidentify');
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    assert.match(r.stderr, /--deidentify applies to DICOM SEG \/ RTSTRUCT results/);
  });

  test('--format rtstruct needs DICOM input; a bad codes file is a typed input error', () => {
    const image = dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz');
    let r = medseg('predict', model, image, '--out', join(tmp, 'x'), '--format', 'rtstruct');
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    assert.match(r.stderr, /--format rtstruct needs DICOM input \(an RTSTRUCT references its source slices\)/);
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ '1': { type: { value: '1' } } }));
    r = medseg('predict', model, study, '--out', join(tmp, 'y'), '--segment-codes', bad);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /bad\.json: 1\.category: expected a code object/);
  });
});
