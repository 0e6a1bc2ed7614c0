/**
 * Test helpers of the service: tiny model folders (untrained networks from
 * @medseg/medseg's model fixture: the paths, not accuracy, are under test),
 * real cases from the shared data, a service on a loopback port in a fresh
 * data folder, and small HTTP helpers.
 */
import { writeFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFixtureModel } from '@medseg/medseg/testing/model-fixture';
import { dataPath } from '@medseg/medseg/testing/data';
import { defaultConfig, type ServiceConfig } from '../config.ts';
import { writeZip } from './zip.ts';

export function tempDir(prefix = 'medseg-server-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Models folder with `hippo` (3D MRI, one fold) and `gray` (2D grey, one
 * fold); with `o.slow` also `slow`: hippo with mirroring TTA and quarter-patch
 * tile steps, so a hippocampus case runs for seconds even on an idle machine
 * (hundreds of tiles, eight passes each) and a test can act on it while it runs.
 */
export function writeModels(dir: string, o: { slow?: boolean } = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFixtureModel(join(dir, 'hippo'), 'mri3d', [{ weights: { best: 'random' } }]);
  writeFixtureModel(join(dir, 'gray'), 'gray2d', [{ weights: { best: 'random' } }]);
  if (o.slow) {
    const plan = writeFixtureModel(join(dir, 'slow'), 'mri3d', [{ weights: { best: 'random' } }]);
    writeFileSync(join(dir, 'slow', 'plan.json'), JSON.stringify({ ...plan, inference: { ...plan.inference, mirror: true, stepFraction: 0.25 } }));
  }
  return dir;
}

/**
 * A CT model folder (`ct`, one fold, untrained) for the shared 3-slice CT
 * (dcmqi-ct-dicomseg/ct-3slice: 512x512, 0.81 mm pixels, 1 mm apart): planned
 * at that spacing with 4x256x256 patches, so the case is predicted in nine
 * tiles without resampling.
 */
export function writeCtModel(dir: string): string {
  const plan = writeFixtureModel(join(dir, 'ct'), 'ct3d', [{ weights: { best: 'random' } }]);
  writeFileSync(join(dir, 'ct', 'plan.json'), JSON.stringify({ ...plan, targetSpacing: [1, 0.810547, 0.810547], patchSize: [4, 256, 256] }));
  return join(dir, 'ct');
}

/** The shared 3-slice CT series (dcmqi-ct-dicomseg/ct-3slice): its folder and its files' bytes, in name order. */
export function ctSeries(): { dir: string; files: Buffer[] } {
  const dir = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort();
  return { dir, files: names.map((f) => readFileSync(join(dir, f))) };
}

/** The n-th hippocampus crop of the shared data (MSD Task04, ~35x51x35 voxels). */
export function hippocampusCase(n = 1): { path: string; bytes: Buffer } {
  const dir = dataPath('msd-hippocampus', 'images');
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.nii.gz'))
    .sort();
  const path = join(dir, names[(n - 1) % names.length]!);
  return { path, bytes: readFileSync(path) };
}

export function testConfig(dataDir: string, modelsDir: string, over: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    ...defaultConfig(dataDir),
    modelsDir,
    port: 0,
    workers: 1,
    leaseMs: 2000,
    heartbeatMs: 400,
    pollMs: 200,
    logLevel: 'silent',
    ...over,
  };
}

export function auth(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** A multipart body with the given fields and one file part. */
export function caseForm(fields: Record<string, string>, file?: { bytes: Uint8Array; name: string; type?: string }): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) form.append('file', new Blob([file.bytes], { type: file.type ?? 'application/octet-stream' }), file.name);
  return form;
}

export async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    let v: T | undefined;
    try {
      v = await f();
    } catch (e) {
      last = e;
    }
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Submits a multipart case and waits until its job is done; its id (a failed job fails the wait with its message). */
export async function submitAndWait(url: string, h: Record<string, string>, form: FormData): Promise<string> {
  const r = await fetch(`${url}/jobs`, { method: 'POST', headers: h, body: form });
  if (r.status !== 202) throw new Error(`submission refused: ${r.status} ${await r.text()}`);
  const { id } = (await r.json()) as { id: string };
  let failed: string | undefined;
  await waitFor(`job ${id}`, async () => {
    const j = (await (await fetch(`${url}/jobs/${id}`, { headers: h })).json()) as { state: string; error: string | null };
    if (j.state === 'failed' || j.state === 'cancelled') failed = `job ${id} ${j.state}: ${j.error}`;
    return j.state === 'done' || failed ? j : undefined;
  });
  if (failed) throw new Error(failed);
  return id;
}

/** A zip of the shared 3-slice CT series (as CT/<name>.dcm), written by Python's zipfile at `path`. */
export function writeCtZip(path: string): Buffer {
  const ct = ctSeries();
  writeZip(
    path,
    readdirSync(ct.dir)
      .filter((f) => f.endsWith('.dcm'))
      .sort()
      .map((f) => ({ name: `CT/${f}`, file: join(ct.dir, f) })),
  );
  return readFileSync(path);
}
