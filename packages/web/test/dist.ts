/**
 * Test helper: the viewer's static build (packages/web/dist), rebuilt with
 * Vite only when a source it bundles is newer than the last build, so the
 * browser tests pay for a build (a few seconds) once per change.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = fileURLToPath(new URL('..', import.meta.url));
export const DIST_DIR = join(WEB_DIR, 'dist');
/** Written last by a build, so its time is the build's (scripts/setup.sh compares against it too). */
const BUILT = join(DIST_DIR, 'index.html');
const MEDSEG_SRC = fileURLToPath(new URL('../../medseg/src/', import.meta.url));

/** Sources the page bundles: its own, and the medseg folders its browser modules import from. */
const SOURCES = [
  join(WEB_DIR, 'src'),
  join(WEB_DIR, 'index.html'),
  join(WEB_DIR, 'vite.config.ts'),
  join(WEB_DIR, 'package.json'),
  ...['deploy', 'infer', 'data', 'plan'].map((d) => join(MEDSEG_SRC, d)),
];

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return path.endsWith('.test.ts') ? 0 : st.mtimeMs;
  let t = 0;
  for (const name of readdirSync(path)) t = Math.max(t, newest(join(path, name)));
  return t;
}

/** Builds the viewer unless dist/ is newer than every source; returns whether it built and how long that took. */
export async function ensureViewerBuilt(): Promise<{ built: boolean; seconds: number }> {
  const sourcesTime = Math.max(...SOURCES.filter(existsSync).map(newest));
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= sourcesTime) return { built: false, seconds: 0 };
  const t0 = performance.now();
  const { build } = await import('vite');
  await build({ configFile: join(WEB_DIR, 'vite.config.ts'), logLevel: 'error' });
  return { built: true, seconds: (performance.now() - t0) / 1000 };
}
