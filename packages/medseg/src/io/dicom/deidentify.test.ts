import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { deidentify, newDeidentifyState } from './deidentify.ts';
import { runPython } from '../../testing/python.ts';

const dir = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-deid-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// pydicom reads the original and the de-identified files and reports what changed.
const CHECK = `
import sys, json, datetime, numpy as np, pydicom
out = []
for orig, new in zip(sys.argv[1::2], sys.argv[2::2]):
    a = pydicom.dcmread(orig); b = pydicom.dcmread(new)
    out.append({
        'privateBefore': sum(1 for e in a.iterall() if e.tag.is_private),
        'privateAfter': sum(1 for e in b.iterall() if e.tag.is_private),
        'name': str(b.PatientName), 'id': str(b.PatientID), 'birth': str(b.get('PatientBirthDate', 'absent')),
        'studyDate': str(b.get('StudyDate', 'absent')), 'origStudyDate': str(a.StudyDate),
        'removed': str(b.PatientIdentityRemoved), 'method': str(b.get('DeidentificationMethod', '')),
        'study': str(b.StudyInstanceUID), 'origStudy': str(a.StudyInstanceUID),
        'series': str(b.SeriesInstanceUID), 'sop': str(b.SOPInstanceUID), 'origSop': str(a.SOPInstanceUID),
        'mediaSop': str(b.file_meta.MediaStorageSOPInstanceUID), 'sopClass': str(b.SOPClassUID), 'origSopClass': str(a.SOPClassUID),
        'for': str(b.FrameOfReferenceUID), 'origFor': str(a.FrameOfReferenceUID),
        'pixelsEqual': bool(np.array_equal(a.pixel_array, b.pixel_array)),
        'accession': str(b.get('AccessionNumber', 'absent')),
    })
print(json.dumps(out))
`;

function run(opts: Parameters<typeof deidentify>[1], tag: string) {
  const files = readdirSync(dir).sort();
  const state = newDeidentifyState();
  const args: string[] = [];
  for (const f of files) {
    const out = join(tmp, `${tag}-${f}`);
    writeFileSync(out, deidentify(readFileSync(join(dir, f)), { ...opts, state }));
    args.push(join(dir, f), out);
  }
  return JSON.parse(runPython(['-c', CHECK, ...args])) as Record<string, string | number | boolean>[];
}

describe('deidentify (PS3.15 basic profile) checked with pydicom', () => {
  it('removes identity and private tags, replaces UIDs consistently, keeps pixels', () => {
    const r = run({}, 'basic');
    const uids = new Set<string>();
    for (const x of r) {
      assert.ok((x.privateBefore as number) > 0, 'the source has private tags to remove');
      assert.equal(x.privateAfter, 0);
      assert.equal(x.name, 'ANONYMOUS');
      assert.equal(x.id, 'ANON-1');
      assert.equal(x.birth, '');
      assert.equal(x.studyDate, '');
      assert.equal(x.removed, 'YES');
      assert.match(String(x.method), /Basic Application Level Confidentiality/);
      assert.notEqual(x.study, x.origStudy);
      assert.notEqual(x.sop, x.origSop);
      assert.equal(x.mediaSop, x.sop);
      assert.equal(x.sopClass, x.origSopClass, 'class UIDs are not instance UIDs');
      assert.ok(x.pixelsEqual);
      uids.add(String(x.sop));
    }
    assert.equal(uids.size, 3, 'distinct SOP instances stay distinct');
    assert.equal(new Set(r.map((x) => x.study)).size, 1, 'one study in, one study out');
    assert.equal(new Set(r.map((x) => x.for)).size, 1);
  });

  it('shifts dates when asked', () => {
    const r = run({ dates: 'shift', shiftDays: -30, patientId: 'P7' }, 'shift');
    for (const x of r) {
      const o = String(x.origStudyDate);
      const expected = new Date(Date.UTC(+o.slice(0, 4), +o.slice(4, 6) - 1, +o.slice(6, 8) - 30)).toISOString().slice(0, 10).replace(/-/g, '');
      assert.equal(x.studyDate, expected);
      assert.equal(x.id, 'P7');
    }
  });

  it('keeps dates when asked', () => {
    for (const x of run({ dates: 'keep' }, 'keep')) assert.equal(x.studyDate, x.origStudyDate);
  });
});
