/**
 * Test helper: a real Orthanc PACS with its DICOMweb plugin (Debian packages
 * orthanc and orthanc-dicomweb; `bash scripts/setup.sh test` installs them),
 * started on free ports with a throw-away configuration and storage in a
 * temporary folder, and stopped (folder removed) by stop(). Orthanc listens
 * on every interface but, with RemoteAccessAllowed false, answers only
 * clients on this machine. MEDSEG_ORTHANC and MEDSEG_ORTHANC_DICOMWEB name
 * other binaries.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './fixture.ts';

export const ORTHANC = process.env.MEDSEG_ORTHANC ?? '/usr/sbin/Orthanc';
/** Where Debian's orthanc-dicomweb puts the plugin (the first that exists is used). */
export const DICOMWEB_PLUGINS = [
  process.env.MEDSEG_ORTHANC_DICOMWEB,
  '/usr/share/orthanc/plugins/libOrthancDicomWeb.so',
  '/usr/lib/orthanc/plugins/libOrthancDicomWeb.so',
].filter((p): p is string => !!p);

export class OrthancMissingError extends Error {
  override readonly name = 'OrthancMissingError';
}

export interface RunningOrthanc {
  /** Orthanc's own REST API, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The DICOMweb root: url + /dicom-web */
  dicomweb: string;
  httpPort: number;
  dicomPort: number;
  /** The last 20 kB of Orthanc's log (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** A TCP port free on loopback at the time of asking. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const running = new Set<ChildProcess>();
// A test process that ends without calling stop() (a crash, an uncaught error) does not leave Orthanc behind.
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startOrthanc(): Promise<RunningOrthanc> {
  if (!existsSync(ORTHANC)) {
    throw new OrthancMissingError(
      `Orthanc not found at ${ORTHANC}: apt-get install -y orthanc orthanc-dicomweb (scripts/setup.sh test does this), or set MEDSEG_ORTHANC`,
    );
  }
  const plugin = DICOMWEB_PLUGINS.find((p) => existsSync(p));
  if (!plugin) {
    throw new OrthancMissingError(
      `Orthanc's DICOMweb plugin not found (looked at ${DICOMWEB_PLUGINS.join(', ')}): apt-get install -y orthanc-dicomweb, or set MEDSEG_ORTHANC_DICOMWEB`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'medseg-orthanc-'));
  const storage = join(dir, 'storage');
  const temp = join(dir, 'tmp');
  mkdirSync(storage);
  mkdirSync(temp);
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const config = {
    Name: 'medseg-test',
    StorageDirectory: storage,
    IndexDirectory: storage,
    TemporaryDirectory: temp,
    StorageCompression: false,
    HttpServerEnabled: true,
    HttpPort: httpPort,
    DicomServerEnabled: true,
    DicomPort: dicomPort,
    DicomAet: 'MEDSEGTEST',
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    HttpsVerifyPeers: false,
    ConcurrentJobs: 1,
    HttpThreadsCount: 4,
    SaveJobs: false,
    Plugins: [plugin],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false },
  };
  const configPath = join(dir, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const child = spawn(ORTHANC, ['--no-jobs', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    running.delete(child);
    exited = signal ?? `exit ${code}`;
  });
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (exited === undefined) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const answered = await waitFor(
      `Orthanc to answer on ${url}/system`,
      async () => {
        if (exited !== undefined) return 'ended';
        const r = await fetch(`${url}/system`, { signal: AbortSignal.timeout(1000) });
        if (!r.ok) return undefined;
        const sys = (await r.json()) as { Name?: string };
        return sys.Name === 'medseg-test' ? 'up' : undefined;
      },
      30_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${log}`);
    });
    if (answered === 'ended') throw new OrthancMissingError(`Orthanc ended (${exited}) before it answered:\n${log}`);
    const plugins = (await (await fetch(`${url}/plugins`)).json()) as string[];
    if (!plugins.includes('dicom-web')) throw new OrthancMissingError(`Orthanc started without its DICOMweb plugin (plugins: ${plugins.join(', ')}):\n${log}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, dicomweb: `${url}/dicom-web`, httpPort, dicomPort, log: () => log, stop };
}
