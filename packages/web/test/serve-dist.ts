/** The viewer's static build on a loopback server a test starts and stops (with the headers the service sends). */
import { createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveStaticFile, STATIC_HEADERS } from '../../server/src/http/static-files.ts';
import { DIST_DIR } from './dist.ts';

/** Serves the viewer's build on 127.0.0.1 at a free port. */
export async function serveDist(): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    requests.push(path);
    const file = resolveStaticFile(DIST_DIR, path);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { ...STATIC_HEADERS, 'content-type': file.type, 'content-length': file.bytes });
    createReadStream(file.path).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
