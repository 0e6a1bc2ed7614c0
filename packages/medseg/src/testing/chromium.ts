/**
 * Test helper: headless Chromium through playwright-core, which never
 * downloads a browser. Uses the Debian chromium package (scripts/setup.sh
 * test installs it) or the binary named by MEDSEG_CHROMIUM.
 */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.MEDSEG_CHROMIUM ?? '/usr/bin/chromium';

export class ChromiumMissingError extends Error {
  constructor(path: string) {
    super(
      `Chromium not found at ${path}. Install it with: sudo apt-get install -y chromium (Debian package "chromium"; scripts/setup.sh test does this), ` +
        'or set MEDSEG_CHROMIUM to another Chromium/Chrome binary',
    );
    this.name = 'ChromiumMissingError';
  }
}

export interface ChromiumOptions {
  executablePath?: string;
  /**
   * WebGPU on SwiftShader (the software Vulkan Debian's chromium ships):
   * a real WebGPU implementation on the CPU, so the page's WebGPU path runs
   * here; without it the GPU process is off (--disable-gpu) and there is no adapter.
   */
  webgpu?: boolean;
}

/** A headless Chromium with a fresh profile in `profile` (a directory the caller removes); close it in a finally. */
export async function launchChromium(profile: string, o: ChromiumOptions = {}): Promise<BrowserContext> {
  const executablePath = o.executablePath ?? CHROMIUM;
  if (!existsSync(executablePath)) throw new ChromiumMissingError(executablePath);
  const gpu = o.webgpu ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] : ['--disable-gpu'];
  return chromium.launchPersistentContext(profile, {
    executablePath,
    args: ['--headless', '--no-sandbox', ...gpu, '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}
