/**
 * Non-IID simulation: a raw dataset's training cases split across N site
 * folders, each an nnU-Net raw dataset folder (dataset.json + imagesTr/ +
 * labelsTr/) whose files are symbolic links to the original ones, so no
 * image is copied.
 * - 'by-case': a seeded shuffle of the cases cut into N near-equal parts;
 * - 'by-intensity': the cases sorted by the median image intensity inside
 *   their foreground (label > 0; the first channel) and cut into N
 *   contiguous parts, so each site sees another intensity profile, as
 *   hospitals with different scanners do.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readDataset, type DatasetCase } from '../data/dataset.ts';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import { median } from '../util/quantile.ts';
import { seededRandom } from '../util/random.ts';

export type SiteSplitStrategy = 'by-case' | 'by-intensity';

export interface SiteFolder {
  name: string;
  dir: string;
  ids: string[];
  /** Each case's median foreground intensity ('by-intensity' only). */
  medianIntensity?: number[];
}

/** The median of the first channel's voxels where the label is > 0 (NaN for a case without foreground). */
export async function medianForegroundIntensity(c: DatasetCase): Promise<number> {
  if (!c.labelPath) throw new MedsegIoError('BAD_DATA', `case ${c.id} has no label: the intensity split needs labelled cases`, c.imagePaths[0]);
  const [img, lab] = await Promise.all([readVolume(c.imagePaths[0]!), readVolume(c.labelPath)]);
  const n = lab.data.length;
  if (img.data.length < n) throw new MedsegIoError('BAD_DATA', `case ${c.id}: the image has fewer voxels than the label`, c.imagePaths[0]);
  const values: number[] = [];
  for (let i = 0; i < n; i++) if (lab.data[i]! > 0) values.push(Number(img.data[i]!));
  return values.length ? median(values) : NaN;
}

/** Cuts `items` into `n` contiguous parts whose sizes differ by at most one. */
function cut<T>(items: T[], n: number): T[][] {
  return Array.from({ length: n }, (_, k) => items.slice(Math.floor((k * items.length) / n), Math.floor(((k + 1) * items.length) / n)));
}

export async function splitAcrossSites(o: {
  dataset: string;
  out: string;
  sites: number;
  strategy: SiteSplitStrategy;
  /** Only these cases (default: every training case). */
  ids?: string[];
  seed?: number;
}): Promise<SiteFolder[]> {
  const ds = readDataset(o.dataset);
  const wanted = o.ids ? new Set(o.ids) : null;
  const cases = ds.training.filter((c) => !wanted || wanted.has(c.id));
  if (wanted && cases.length !== wanted.size)
    throw new MedsegIoError('BAD_DATA', `${wanted.size - cases.length} of the cases named are not in the dataset`, ds.dir);
  if (!(Number.isInteger(o.sites) && o.sites >= 1 && o.sites <= cases.length))
    throw new MedsegIoError('BAD_DATA', `cannot split ${cases.length} cases across ${o.sites} sites`, ds.dir);
  let parts: { c: DatasetCase; intensity?: number }[][];
  if (o.strategy === 'by-intensity') {
    const scored: { c: DatasetCase; intensity: number }[] = [];
    for (const c of cases) scored.push({ c, intensity: await medianForegroundIntensity(c) });
    // Cases without foreground go last; ties by id keep the split deterministic.
    scored.sort((a, b) => (Number.isNaN(a.intensity) ? 1 : 0) - (Number.isNaN(b.intensity) ? 1 : 0) || a.intensity - b.intensity || (a.c.id < b.c.id ? -1 : 1));
    parts = cut(scored, o.sites);
  } else {
    const rnd = seededRandom(o.seed ?? 20261203);
    const shuffled = cases.map((c) => ({ c }));
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    parts = cut(shuffled, o.sites);
  }
  const meta = JSON.parse(readFileSync(join(ds.dir, 'dataset.json'), 'utf8')) as Record<string, unknown>;
  // Nothing is written when any site folder exists already.
  for (let k = 0; k < parts.length; k++)
    if (existsSync(join(o.out, `site_${k}`)))
      throw new MedsegIoError('BAD_DATA', 'a site folder already exists here: choose an empty --out', join(o.out, `site_${k}`));
  return parts.map((part, k) => {
    const name = `site_${k}`;
    const dir = join(o.out, name);
    for (const sub of ['imagesTr', 'labelsTr']) mkdirSync(join(dir, sub), { recursive: true });
    const sorted = [...part].sort((a, b) => (a.c.id < b.c.id ? -1 : 1));
    for (const { c } of sorted) {
      for (const p of c.imagePaths) symlinkSync(p, join(dir, 'imagesTr', basename(p)));
      symlinkSync(c.labelPath!, join(dir, 'labelsTr', basename(c.labelPath!)));
    }
    writeFileSync(join(dir, 'dataset.json'), `${JSON.stringify({ ...meta, name: `${ds.name} ${name}`, numTraining: part.length }, null, 2)}\n`);
    return {
      name,
      dir,
      ids: sorted.map((x) => x.c.id),
      ...(o.strategy === 'by-intensity' ? { medianIntensity: sorted.map((x) => x.intensity!) } : {}),
    };
  });
}
