/**
 * Static files below one folder (the viewer's build): a URL path resolved to
 * a file strictly inside the folder, index.html for a folder, and the content
 * type by extension. Paths that reach outside the folder, hidden names and
 * missing files resolve to nothing.
 */
import { statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Headers of every static response: cross-origin isolation (onnxruntime-web
 * runs its wasm kernels on threads only in an isolated page) and no sniffing.
 */
export const STATIC_HEADERS: Record<string, string> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'x-content-type-options': 'nosniff',
};

export interface StaticFile {
  path: string;
  type: string;
  bytes: number;
}

/** The file a URL path (below the mount point, e.g. 'assets/x.js' or '') names inside root, or null. */
export function resolveStaticFile(root: string, urlPath: string): StaticFile | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]!);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.split(/[\\/]/).some((part) => part.startsWith('.') && part !== '')) return null;
  const base = resolve(root);
  let path = resolve(base, `.${sep}${rel}`);
  if (path !== base && !path.startsWith(base + sep)) return null;
  try {
    let st = statSync(path);
    if (st.isDirectory()) {
      path = join(path, 'index.html');
      st = statSync(path);
    }
    if (!st.isFile()) return null;
    return { path, type: CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream', bytes: st.size };
  } catch {
    return null;
  }
}
