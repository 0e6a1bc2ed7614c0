/**
 * The viewer's zip unpacking, in Node (the same code runs in the page): the
 * files of a zip with their paths, a zip that would inflate past the limit
 * refused before anything is inflated, a broken zip named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zipSync } from 'fflate';
import { filesOfZip } from '../src/dicom-open.ts';

test('a zip gives its files (folders flattened into the path); a zip bomb and a broken zip are refused with a message', async () => {
  const zip = zipSync({ 'CT/01.dcm': new Uint8Array([1, 2, 3]), 'CT/sub/02.dcm': new Uint8Array([4]), 'empty/': new Uint8Array(0) });
  const files = await filesOfZip(new File([zip], 'series.zip'));
  assert.deepEqual(
    files.map((f) => [f.name, (f as unknown as { _webkitRelativePath: string })._webkitRelativePath, f.size]),
    [
      ['01.dcm', 'CT/01.dcm', 3],
      ['02.dcm', 'CT/sub/02.dcm', 1],
    ],
  );
  // 3 MiB of zeros deflate to a few kB: past a 1 MiB limit, refused.
  const bomb = zipSync({ 'a.dcm': new Uint8Array(3 * 1024 ** 2) }, { level: 9 });
  assert.ok(bomb.length < 20_000);
  await assert.rejects(filesOfZip(new File([bomb], 'bomb.zip'), 1024 ** 2), /bomb\.zip would unpack to more than 1 MiB: refused/);
  await assert.rejects(filesOfZip(new File([zip.subarray(0, 40)], 'cut.zip')), /cut\.zip is not a readable zip/);
});
