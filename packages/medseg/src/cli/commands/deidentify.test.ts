/**
 * `medseg deidentify` on the shared CT series and on a folder tree with a
 * truncated file and a non-DICOM file: outputs at the same relative paths, a
 * JSON or CSV log (read back with Python's csv module), exit 2 listing the
 * failed file, usage errors for contradictory options.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMedseg } from '../../testing/cli.ts';
import { dataPath } from '../../testing/data.ts';
import { runPythonJson } from '../../testing/python.ts';
import { parseDicom } from '../../io/dicom/parse.ts';
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE } from '../errors.ts';
import { runCli } from '../program.ts';

const CT = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-deid-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('medseg deidentify', () => {
  it('de-identifies a series folder with a CSV log and a UID map that the next run reuses', async () => {
    const out = join(tmp, 'ct');
    const log = join(tmp, 'log.csv');
    const map = join(tmp, 'uids.json');
    assert.equal(await runCli(['node', 'medseg', 'deidentify', CT, out, '--log', log, '--uid-map', map, '--keep-dates']), EXIT_OK);
    const files = readdirSync(CT).sort();
    assert.deepEqual(readdirSync(out).sort(), files);
    const first = parseDicom(readFileSync(join(out, files[0]!))).dataset;
    assert.equal(first.string(0x00120062), 'YES');
    assert.equal(first.string(0x00080020), parseDicom(readFileSync(join(CT, files[0]!))).dataset.string(0x00080020), '--keep-dates keeps the study date');
    const rows = runPythonJson<Record<string, string>[]>(['-c', 'import csv, json, sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1])))))', log]);
    assert.deepEqual(Object.keys(rows[0]!), ['input', 'output', 'status', 'reason', 'path', 'tag', 'name', 'action', 'rule', 'before', 'after']);
    assert.ok(rows.some((r) => r.input === files[0] && r.tag === '(0010,0030)' && r.action === 'Z' && r.after === 'empty'));
    assert.ok(rows.some((r) => r.rule === 'private' && r.after === 'removed'));

    // a second run with the same map gives the same UIDs (a SEG de-identified later would match)
    const uids = JSON.parse(readFileSync(map, 'utf8')) as Record<string, string>;
    const out2 = join(tmp, 'ct-again');
    assert.equal(await runCli(['node', 'medseg', 'deidentify', CT, out2, '--uid-map', map]), EXIT_OK);
    const again = parseDicom(readFileSync(join(out2, files[0]!))).dataset;
    assert.equal(again.string(0x00080018), first.string(0x00080018));
    assert.equal(again.string(0x00080018), uids[parseDicom(readFileSync(join(CT, files[0]!))).dataset.string(0x00080018)!]);
    assert.ok(existsSync(join(out2, 'deidentify-log.json')), 'default log in the output folder');
  });

  it('continues past a truncated file, skips a non-DICOM file, and exits 2 listing the failure', () => {
    const src = join(tmp, 'tree');
    mkdirSync(join(src, 'a', 'b'), { recursive: true });
    const files = readdirSync(CT).sort();
    writeFileSync(join(src, 'a', 'b', 'x.dcm'), readFileSync(join(CT, files[0]!)));
    writeFileSync(join(src, 'a', 'cut.dcm'), readFileSync(join(CT, files[1]!)).subarray(0, 3000));
    writeFileSync(join(src, 'readme.txt'), 'hello');
    const out = join(tmp, 'tree-out');
    const r = runMedseg(['deidentify', src, out, '--json']);
    assert.equal(r.status, EXIT_BAD_INPUT, r.stderr);
    assert.match(r.stderr, /cut\.dcm/);
    assert.match(r.stderr, /skipped .*readme\.txt/);
    assert.ok(existsSync(join(out, 'a', 'b', 'x.dcm')));
    const log = JSON.parse(readFileSync(join(out, 'deidentify-log.json'), 'utf8')) as { files: { input: string; status: string; code?: string }[] };
    assert.deepEqual(log.files.map((f) => [f.input, f.status, f.code ?? '']).sort(), [
      [join('a', 'b', 'x.dcm'), 'written', ''],
      [join('a', 'cut.dcm'), 'failed', 'TRUNCATED'],
      ['readme.txt', 'skipped', ''],
    ]);
    const json = JSON.parse(r.stdout) as { ok: boolean; error: { code: string } };
    assert.equal(json.ok, false);
  });

  it('exits 64 on contradictory date options or a bad private rule, 2 on a missing input', async () => {
    assert.equal(await runCli(['node', 'medseg', 'deidentify', CT, join(tmp, 'u1'), '--keep-dates', '--shift-dates=3']), EXIT_USAGE);
    assert.equal(await runCli(['node', 'medseg', 'deidentify', CT, join(tmp, 'u2'), '--keep-private', '0008:X:10']), EXIT_USAGE);
    assert.equal(await runCli(['node', 'medseg', 'deidentify', join(tmp, 'missing'), join(tmp, 'u3')]), EXIT_BAD_INPUT);
  });
});
