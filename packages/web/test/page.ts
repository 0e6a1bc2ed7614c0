/**
 * Test helpers for the viewer page in Chromium: wait for the page's state
 * (body[data-state]), save its mask through its own button and read it with
 * medseg, read the canvas once NiiVue has drawn, open the page and pick
 * the brush through its controls.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { BrowserContext, Page } from 'playwright-core';
import { readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';

export type State = 'empty' | 'loading' | 'ready' | 'running' | 'done' | 'cancelled' | 'error';

export async function waitForState(page: Page, state: State, timeout = 60_000): Promise<string> {
  await page.waitForFunction(
    ([want]) => {
      const d = (globalThis as unknown as { document: { body: { dataset: { state?: string } } } }).document;
      const s = d.body.dataset.state;
      // A run that ended otherwise than awaited ends the wait too (the assertion below says how).
      return s === want || ((want === 'done' || want === 'cancelled') && (s === 'done' || s === 'cancelled')) || s === 'error';
    },
    [state] as const,
    { timeout },
  );
  const status = (await page.locator('#status').textContent()) ?? '';
  const now = await page.locator('body').getAttribute('data-state');
  assert.equal(now, state, `page state ${now}: ${status}`);
  return status;
}

/** The page's mask as saved through its "Save mask" button, read with medseg's reader. */
export async function savedMask(page: Page, dir: string, name: string): Promise<Volume> {
  const download = page.waitForEvent('download');
  await page.click('#save-mask');
  const d = await download;
  assert.match(d.suggestedFilename(), /_mask\.nii\.gz$/);
  const path = join(dir, name);
  await d.saveAs(path);
  return readVolume(path);
}

/** Two animation frames: NiiVue has drawn what the last change asked for. */
export async function frames(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const raf = (globalThis as unknown as { requestAnimationFrame(cb: () => void): void }).requestAnimationFrame;
        raf(() => raf(() => resolve()));
      }),
  );
}

export async function canvasPixels(page: Page): Promise<PNG> {
  await frames(page);
  return PNG.sync.read(await page.locator('#gl').screenshot());
}

/**
 * The viewer at `url` in a 1280 × 800 page of `context`, its page errors
 * collected into `problems`, once it shows its empty state; `watch` adds
 * listeners before the page loads.
 */
export async function openViewer(context: BrowserContext, url: string, problems: string[], watch?: (page: Page) => void): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  watch?.(page);
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  await waitForState(page, 'empty');
  return page;
}

/** Picks the brush, a label and a size through the page's controls. */
export async function chooseBrush(page: Page, label: number, size: number): Promise<void> {
  await page.click('button[data-tool="brush"]');
  await page.selectOption('#brush-label', String(label));
  await page.fill('#brush-size', String(size));
  await page.dispatchEvent('#brush-size', 'change');
}
