/**
 * Finds the labelled cases of a raw dataset folder. Understood layouts:
 * - nnU-Net v2: dataset.json (channel_names, labels {name: id}, file_ending),
 *   imagesTr/<id>_<cccc><ending>, labelsTr/<id><ending>;
 * - MSD: dataset.json with modality, labels {id: name} and training [{image, label}];
 * - a bare pair of folders images/ + labels/ with equal file names (the
 *   shared MSD hippocampus copy).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';

export interface RawCase {
  id: string;
  images: string[];
  label: string | null;
}

export interface RawDataset {
  dir: string;
  name: string;
  /** Channel (modality) names in order, e.g. ['MRI'] or ['CT']. */
  channels: string[];
  /** Class names by label id; 0 is background. */
  labels: Record<number, string>;
  cases: RawCase[];
}

const ENDINGS = ['.nii.gz', '.nii', '.nrrd', '.png', '.tif', '.tiff'];

function stem(name: string): string {
  const e = ENDINGS.find((x) => name.toLowerCase().endsWith(x));
  return e ? name.slice(0, -e.length) : name;
}

export function readRawDataset(dirIn: string): RawDataset {
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw new MedsegIoError('NOT_FOUND', 'dataset folder does not exist', dir);
  const jsonPath = join(dir, 'dataset.json');
  if (existsSync(jsonPath)) {
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(readFileSync(jsonPath, 'utf8'));
    } catch (e) {
      throw new MedsegIoError('CORRUPT', `dataset.json is not valid JSON (${(e as Error).message})`, jsonPath);
    }
    const labels: Record<number, string> = {};
    for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, unknown>)) {
      if (/^\d+$/.test(k)) labels[Number(k)] = String(v); // MSD: {"0": "background"}
      else labels[Number(v)] = k; // nnU-Net v2: {"background": 0}
    }
    const chanObj = (meta.channel_names ?? meta.modality ?? { 0: 'image' }) as Record<string, string>;
    const channels = Object.keys(chanObj)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => chanObj[k]!);
    if (Array.isArray(meta.training)) {
      const cases = (meta.training as { image: string; label: string }[]).map((t) => ({
        id: stem(t.image.split('/').pop()!),
        images: [join(dir, t.image)],
        label: join(dir, t.label),
      }));
      return { dir, name: String(meta.name ?? dir), channels, labels, cases };
    }
    const ending = String(meta.file_ending ?? '.nii.gz');
    const lblDir = join(dir, 'labelsTr');
    const imgDir = join(dir, 'imagesTr');
    if (!existsSync(lblDir) || !existsSync(imgDir)) throw new MedsegIoError('NOT_FOUND', 'expected imagesTr/ and labelsTr/ beside dataset.json', dir);
    const cases = readdirSync(lblDir)
      .filter((f) => f.endsWith(ending))
      .sort()
      .map((f) => {
        const id = f.slice(0, -ending.length);
        const images = channels.map((_, c) => join(imgDir, `${id}_${String(c).padStart(4, '0')}${ending}`));
        const missing = images.find((p) => !existsSync(p));
        if (missing) throw new MedsegIoError('NOT_FOUND', `case ${id} has a label but no image ${missing}`, dir);
        return { id, images, label: join(lblDir, f) };
      });
    return { dir, name: String(meta.name ?? dir), channels, labels, cases };
  }
  const imgDir = join(dir, 'images');
  const lblDir = join(dir, 'labels');
  if (existsSync(imgDir) && existsSync(lblDir)) {
    const labelFiles = new Map(readdirSync(lblDir).map((f) => [stem(f), f]));
    const cases = readdirSync(imgDir)
      .filter((f) => ENDINGS.some((e) => f.toLowerCase().endsWith(e)))
      .sort()
      .map((f) => {
        const id = stem(f);
        const l = labelFiles.get(id);
        return { id, images: [join(imgDir, f)], label: l ? join(lblDir, l) : null };
      })
      .filter((c) => c.label !== null);
    return { dir, name: dir.split('/').pop() ?? dir, channels: ['image'], labels: {}, cases };
  }
  throw new MedsegIoError('UNSUPPORTED', 'not a dataset folder: expected dataset.json (nnU-Net / MSD) or images/ + labels/', dir);
}
