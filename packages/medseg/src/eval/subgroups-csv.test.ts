import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { readSubgroupsCsv } from './subgroups-csv.ts';

test('readSubgroupsCsv: case id column by name, group columns trimmed, blank ids skipped; bad files are MedsegIoErrors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-subgroups-'));
  try {
    const good = join(dir, 'groups.csv');
    writeFileSync(good, '\ufeffsite,Case_ID,scanner\r\n"North, 3T", c1 ,GE\r\nSouth,c2,"Siemens ""Prisma"""\r\nWest,,Philips\r\n');
    const { subgroups, columns } = await readSubgroupsCsv(good);
    assert.deepEqual(columns, ['site', 'scanner']);
    assert.deepEqual(subgroups, { c1: { site: 'North, 3T', scanner: 'GE' }, c2: { site: 'South', scanner: 'Siemens "Prisma"' } });

    const code = (c: string) => (e: unknown) => e instanceof MedsegIoError && e.code === c && e.path !== undefined;
    await assert.rejects(readSubgroupsCsv(join(dir, 'missing.csv')), code('NOT_FOUND'));
    const ragged = join(dir, 'ragged.csv');
    writeFileSync(ragged, 'case,site\nc1,A\nc2\n');
    await assert.rejects(readSubgroupsCsv(ragged), (e: unknown) => code('BAD_DATA')(e) && /line 3 has 1 fields/.test((e as Error).message));
    const open = join(dir, 'open.csv');
    writeFileSync(open, 'case,site\nc1,"A\n');
    await assert.rejects(readSubgroupsCsv(open), code('CORRUPT'));
    const empty = join(dir, 'empty.csv');
    writeFileSync(empty, '');
    await assert.rejects(readSubgroupsCsv(empty), code('BAD_DATA'));
    const idOnly = join(dir, 'id-only.csv');
    writeFileSync(idOnly, 'case\nc1\n');
    await assert.rejects(readSubgroupsCsv(idOnly), /at least one group column/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
