/**
 * Opens the generated report in a real (headless) Chromium through
 * playwright-core and checks what a reader would see. Uses the Debian
 * chromium package; playwright-core never downloads a browser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { writeReport } from './html-report.ts';
import { syntheticReportInput, SYNTHETIC_MODELS } from '../../testing/report-fixture.ts';

const CHROMIUM = process.env.MEDSEG_CHROMIUM ?? '/usr/bin/chromium';

test('report renders in Chromium: no console errors, a summary row per model, every plot visible', async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}. Install it with: sudo apt-get install -y chromium  (Debian package "chromium"; ` +
      'or set MEDSEG_CHROMIUM to another Chromium/Chrome binary)',
  );
  // fixed place, overwritten each run, so the last screenshot is easy to find and nothing piles up
  const dir = join(tmpdir(), 'medseg-report-browser');
  mkdirSync(dir, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'medseg-chromium-profile-'));
  const htmlPath = await writeReport(join(dir, 'report.html'), syntheticReportInput({ modelCardHref: (m) => `cards/${encodeURIComponent(m)}.md` }));
  // a fresh profile per run; playwright wants it as userDataDir rather than a --user-data-dir flag
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url().slice(0, 80)}`));
    const external: string[] = [];
    page.on('request', (r) => {
      if (!/^(file|data):/.test(r.url())) external.push(r.url());
    });
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load', timeout: 30_000 });

    const rowModels = await page.$$eval('table.summary-table tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-model')));
    assert.deepEqual(
      rowModels,
      SYNTHETIC_MODELS.map((m) => m.name),
    );

    const plots = await page.$$('svg.medseg-plot');
    assert.equal(plots.length, 9);
    for (const svg of plots) {
      const kind = await svg.getAttribute('data-plot');
      assert.ok(await svg.isVisible(), `${kind} plot visible`);
      const box = await svg.boundingBox();
      assert.ok(box && box.width > 100 && box.height > 100, `${kind} plot has size ${JSON.stringify(box)}`);
    }
    const kinds = await page.$$eval('svg.medseg-plot', (s) => [...new Set(s.map((x) => x.getAttribute('data-plot')))].sort());
    assert.deepEqual(kinds, ['bar', 'box', 'calibration', 'scatter']);
    // overlays decoded by the browser (naturalWidth 0 would mean a broken image)
    const widths = await page.$$eval('#overlays img', (imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    assert.equal(widths.length, 3 * SYNTHETIC_MODELS.length);
    assert.ok(widths.every((w) => w > 0));

    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    console.log(`# report: ${htmlPath}\n# screenshot: ${shot}`);
    assert.deepEqual(problems, [], 'no console errors or warnings');
    assert.deepEqual(external, [], 'no network requests');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
