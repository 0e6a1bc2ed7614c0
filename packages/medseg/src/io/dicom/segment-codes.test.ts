import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPythonJson } from '../../testing/python.ts';
import { MedsegIoError } from '../errors.ts';
import { ANATOMY, CATEGORY, defaultSegmentCodes, MODIFIERS, parseSegmentCodes, segmentCodesFor } from './segment-codes.ts';
import { readSegmentCodes } from './segment-codes-file.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-codes-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const isIoError = (code: string, pattern: RegExp) => (e: unknown) => e instanceof MedsegIoError && e.code === code && pattern.test(e.message);

describe('default segment codes', () => {
  it('MSD hippocampus: direction-only names take the structure from the dataset name', () => {
    for (const [name, modifier] of [
      ['Anterior', '255549009'],
      ['Posterior', '255551008'],
    ] as const) {
      const c = defaultSegmentCodes(name, 'Task04_Hippocampus');
      assert.deepEqual(c.type, { value: '5366008', scheme: 'SCT', meaning: 'Hippocampus' });
      assert.equal(c.category.value, '91723000');
      assert.equal(c.modifier?.value, modifier);
      assert.deepEqual(defaultSegmentCodes(`hippocampus_${name.toLowerCase()}`), c);
    }
    // Without a context that names a structure, a bare direction is not guessed.
    assert.deepEqual(defaultSegmentCodes('Anterior'), { category: CATEGORY.tissue, type: { value: '85756007', scheme: 'SCT', meaning: 'Anterior' } });
    assert.equal(defaultSegmentCodes('Anterior', 'fixture-ct3d').type.meaning, 'Anterior');
  });

  it('common anatomy and abnormalities, laterality as a modifier, and the Tissue fallback named after the label', () => {
    const t = (name: string) => defaultSegmentCodes(name);
    assert.equal(t('Liver').type.value, '10200004');
    assert.equal(t('spleen').type.value, '78961009');
    const k = t('Left-Kidney');
    assert.deepEqual([k.type.value, k.modifier?.value], ['64033007', '7771000']);
    assert.equal(t('Vessel').type.value, '59820001');
    assert.equal(t('hepatic vessel').type.value, '59820001');
    const tumour = t('Tumour');
    assert.deepEqual([tumour.category.value, tumour.type.value], ['49755003', '108369006']);
    assert.equal(t('colon cancer primaries').type.value, '108369006');
    assert.equal(t('edema').type.value, '79654002');
    assert.deepEqual(t('membrane'), { category: CATEGORY.tissue, type: { value: '85756007', scheme: 'SCT', meaning: 'membrane' } });
    assert.equal(t('x'.repeat(80)).type.meaning.length, 64);
  });

  it("every default code is in DICOM's code tables (pydicom's PS3.16 concepts) with the same meaning; categories are CID 7150's", () => {
    const codes = [...Object.values(CATEGORY), ...ANATOMY.flatMap((a) => [a.category, a.type]), ...MODIFIERS.map((m) => m.code)];
    const unique = [...new Map(codes.map((c) => [`${c.scheme}:${c.value}`, c])).values()];
    const r = runPythonJson<{ missing: string[]; categories: string[] }>(
      [
        '-c',
        `
import json, sys
from pydicom.sr._concepts_dict import concepts
from pydicom.sr._cid_dict import cid_concepts
codes = json.load(sys.stdin)
meanings = {}
for scheme, kws in concepts.items():
    for kw, byvalue in kws.items():
        for value, (meaning, cids) in byvalue.items():
            meanings.setdefault((scheme, value), set()).add(meaning.lower())
missing = [f"{c['scheme']}:{c['value']} {c['meaning']}" for c in codes if c['meaning'].lower() not in meanings.get((c['scheme'], c['value']), set())]
cats = [v for kw in cid_concepts[7150]['SCT'] for v in concepts['SCT'][kw]]
print(json.dumps({'missing': missing, 'categories': cats}))`,
      ],
      unique,
    );
    assert.deepEqual(r.missing, []);
    for (const c of Object.values(CATEGORY)) assert.ok(r.categories.includes(c.value), `${c.value} ${c.meaning} in CID 7150`);
    for (const a of ANATOMY) assert.ok(r.categories.includes(a.category.value), `${a.type.meaning}'s category`);
  });
});

describe('supplied segment codes', () => {
  const liver = { value: '10200004', scheme: 'SCT', meaning: 'Liver' };
  const organ = { CodeValue: '91723000', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Anatomical Structure' };

  it('by label value or name, in either code spelling, before the default mapping', () => {
    const table = parseSegmentCodes(
      JSON.stringify({
        '2': { category: organ, type: liver, label: 'Liver (model)', rgb: [200, 100, 50] },
        Posterior: {
          category: organ,
          type: { value: '5366008', scheme: 'SCT', meaning: 'Hippocampus' },
          modifier: { value: '255551008', scheme: 'SCT', meaning: 'Posterior' },
        },
      }),
    );
    const two = segmentCodesFor(2, 'whatever', { table });
    assert.deepEqual([two.type, two.category.value, two.label, two.rgb], [liver, '91723000', 'Liver (model)', [200, 100, 50]]);
    assert.equal(segmentCodesFor(1, 'posterior', { table }).modifier?.meaning, 'Posterior');
    assert.equal(segmentCodesFor(3, 'Spleen', { table }).type.value, '78961009');
  });

  it("reads dcmqi's segmentation meta JSON", async () => {
    const path = join(tmp, 'meta.json');
    writeFileSync(
      path,
      JSON.stringify({
        ContentCreatorName: 'Reader1',
        segmentAttributes: [
          [
            {
              labelID: 1,
              SegmentLabel: 'Liver',
              SegmentedPropertyCategoryCodeSequence: organ,
              SegmentedPropertyTypeCodeSequence: { CodeValue: '10200004', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Liver' },
              recommendedDisplayRGBValue: [221, 130, 101],
            },
          ],
        ],
      }),
    );
    const table = await readSegmentCodes(path);
    assert.deepEqual(table.byValue.get(1), {
      category: { value: '91723000', scheme: 'SCT', meaning: 'Anatomical Structure' },
      type: liver,
      label: 'Liver',
      rgb: [221, 130, 101],
    });
  });

  it('bad files are typed errors naming what is wrong', async () => {
    assert.throws(() => parseSegmentCodes('{"1": '), isIoError('BAD_DATA', /not valid JSON/));
    assert.throws(() => parseSegmentCodes('[1]'), isIoError('BAD_DATA', /expected a JSON object/));
    assert.throws(() => parseSegmentCodes(JSON.stringify({ '1': { category: organ } })), isIoError('BAD_DATA', /1\.type: expected a code object/));
    assert.throws(
      () => parseSegmentCodes(JSON.stringify({ '1': { category: organ, type: { value: '', scheme: 'SCT', meaning: 'x' } } })),
      isIoError('BAD_DATA', /code value must be/),
    );
    assert.throws(() => parseSegmentCodes(JSON.stringify({ '1': { category: organ, type: liver, rgb: [1, 2, 300] } })), isIoError('BAD_DATA', /rgb must be/));
    assert.throws(() => parseSegmentCodes(JSON.stringify({ segmentAttributes: [[{ labelID: 0 }]] })), isIoError('BAD_DATA', /labelID must be/));
    await assert.rejects(readSegmentCodes(join(tmp, 'absent.json')), isIoError('NOT_FOUND', /cannot read the segment codes file/));
  });
});
