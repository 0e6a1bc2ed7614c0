/**
 * Builds the viewer into dist/ as static files with relative URLs, so the
 * medseg service can serve them under any path and `vite preview` or any
 * static server can serve them standalone. medseg's browser modules are
 * bundled from the library's sources; iconv-lite (medseg's DICOM character
 * sets) finds Node's Buffer in the npm `buffer` package, a dependency of the
 * page for that reason.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

const medsegSrc = fileURLToPath(new URL('../medseg/src/', import.meta.url));

/** Cross-origin isolation lets onnxruntime-web run its wasm kernels on several threads. */
export const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: {
    alias: [{ find: /^@medseg\/medseg\/(.*)$/, replacement: `${medsegSrc}$1.ts` }],
    // onnxruntime-web without its wasm loader inlined: the loader is a file of its own, which its threads' workers start from.
    conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096, reportCompressedSize: false },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  logLevel: 'warn',
});
