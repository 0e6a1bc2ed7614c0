/**
 * Imports other layouts into an nnU-Net v2 raw dataset folder
 * (dataset.json + imagesTr/<id>_<cccc><ending> + labelsTr/<id><ending>
 * [+ imagesTs/ labelsTs/]), which data/dataset.ts then reads:
 * - importPairedFolders: an image folder and a label folder matched by file
 *   name stem (the shared MSD hippocampus copy: images/ + labels/; ISBI 2012:
 *   images/ + masks/);
 * - importDrive: DRIVE's training/ and testing/ folders, with the field of
 *   view mask kept beside the label (masksTr/, masksTs/, "region_masks").
 * Label values are remapped to class ids 0..K-1; the mapping (original value
 * -> id) is stored in dataset.json as "label_mapping". Multi-channel images
 * (RGB) are split into one file per channel, as nnU-Net expects.
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import { voxelCount, type Volume } from '../io/volume.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { endingOf } from './dataset.ts';

export interface ImportOptions {
  /** Dataset name written to dataset.json. */
  name: string;
  /** Channel names (default: 'R', 'G', 'B' for RGB, else 'image' per channel). */
  channelNames?: string[];
  /**
   * Original label value -> class id. Default: the sorted distinct values of
   * all labels become 0..K-1 (so ISBI's 0 = membrane, 255 = cell -> 0, 1).
   * Give e.g. {255: 0, 0: 1} to make membrane the foreground class instead.
   */
  labelMapping?: Record<number, number>;
  /** Class names by class id (default 'background', 'class_<value>'). */
  labelNames?: Record<number, string>;
  /** '.nii.gz' (default for 3D) or '.png' (default for 2D sources). */
  fileEnding?: '.nii.gz' | '.png';
  /** Case ids (file stems) that go to imagesTs/labelsTs instead of training. */
  testIds?: string[];
  /** Prefix for case ids (e.g. 'drive_'). */
  idPrefix?: string;
  /** Import only the first N cases of each split (quick trials, tests). */
  limit?: number;
}

interface Pair {
  id: string;
  image: string;
  label: string | null;
  regionMask?: string;
  test: boolean;
}

function stemOf(file: string): string {
  const e = endingOf(file);
  return e ? file.slice(0, -e.length) : file;
}

async function listImages(dir: string): Promise<string[]> {
  if (!existsSync(dir)) throw new MedsegIoError('NOT_FOUND', 'folder does not exist', dir);
  return (await readdir(dir)).filter((f) => !f.startsWith('.') && endingOf(f)).sort();
}

function defaultChannelNames(n: number): string[] {
  return n === 3 ? ['R', 'G', 'B'] : Array.from({ length: n }, (_, i) => (n === 1 ? 'image' : `image${i}`));
}

/** One channel of a planar volume as its own volume. */
function channelOf(v: Volume, c: number): Volume {
  const n = voxelCount(v);
  return { ...v, channels: 1, data: v.data.subarray(c * n, (c + 1) * n) as Volume['data'] };
}

/**
 * A label map as one channel. Masks saved as RGB images (24-bit BMP in
 * dermoscopy datasets; the readers drop alpha, so RGBA arrives as RGB) carry
 * the label in every channel: when the channels agree at every pixel, the
 * first one is the label. Channels that disagree make a colour-coded label
 * map, whose colours are not class values, so it is refused.
 */
export function singleChannelLabel(lab: Volume, path: string): Volume {
  if (lab.channels === 1) return lab;
  const n = voxelCount(lab);
  for (let c = 1; c < lab.channels; c++) {
    for (let i = 0; i < n; i++) {
      if (lab.data[c * n + i] === lab.data[i]) continue;
      const [w, h] = lab.size;
      const at = `(x ${i % w}, y ${Math.floor(i / w) % h}${lab.size[2] > 1 ? `, z ${Math.floor(i / (w * h))}` : ''})`;
      const values = Array.from({ length: lab.channels }, (_, k) => lab.data[k * n + i]).join(', ');
      throw new MedsegIoError(
        'BAD_DATA',
        `a label map must have one channel or ${lab.channels} equal ones; channel ${c} differs from channel 0 at ${at}: ${values}. ` +
          'Save the masks as grayscale or palette images of class values (a colour-coded mask needs its colours mapped to classes first)',
        path,
      );
    }
  }
  return channelOf(lab, 0);
}

async function writeDataset(outDirIn: string, pairs: Pair[], o: ImportOptions): Promise<string> {
  const outDir = resolve(outDirIn);
  if (o.limit !== undefined) pairs = [...pairs.filter((p) => !p.test).slice(0, o.limit), ...pairs.filter((p) => p.test).slice(0, o.limit)];
  if (pairs.length === 0) throw new MedsegIoError('BAD_DATA', 'no image/label pairs found', outDir);
  // First pass over the labels: the distinct values decide the class ids.
  const values = new Set<number>();
  const labels = new Map<string, Volume>();
  for (const p of pairs) {
    if (!p.label) continue;
    const lab = singleChannelLabel(await readVolume(p.label), p.label);
    const seen = new Set<number>();
    for (let i = 0; i < lab.data.length; i++) seen.add(lab.data[i]!);
    for (const v of seen) values.add(v);
    labels.set(p.id, lab);
  }
  const mapping = new Map<number, number>();
  if (o.labelMapping) {
    for (const [k, v] of Object.entries(o.labelMapping)) mapping.set(Number(k), v);
  } else {
    [...values].sort((a, b) => a - b).forEach((v, i) => mapping.set(v, i));
  }
  for (const v of values) {
    if (!mapping.has(v)) throw new MedsegIoError('BAD_DATA', `label value ${v} occurs but labelMapping does not map it`, outDir);
  }
  const ids = [...new Set(mapping.values())].sort((a, b) => a - b);
  ids.forEach((id, i) => {
    if (id !== i) throw new MedsegIoError('BAD_DATA', `labelMapping must map onto 0..K-1; got ids ${ids.join(', ')}`, outDir);
  });
  if (ids.length > 255) throw new MedsegIoError('BAD_DATA', `${ids.length} classes: at most 255 are supported (uint8 labels)`, outDir);
  const inverse = new Map<number, number>();
  for (const [v, id] of mapping) if (!inverse.has(id)) inverse.set(id, v);

  const ending = o.fileEnding ?? '.nii.gz';
  for (const sub of ['imagesTr', 'labelsTr', 'imagesTs', 'labelsTs', 'masksTr', 'masksTs']) await mkdir(join(outDir, sub), { recursive: true });
  let nChannels = -1;
  for (const p of pairs) {
    const split = p.test ? 'Ts' : 'Tr';
    const img = await readVolume(p.image);
    if (nChannels < 0) nChannels = img.channels;
    else if (img.channels !== nChannels) throw new MedsegIoError('BAD_DATA', `has ${img.channels} channels, earlier images had ${nChannels}`, p.image);
    const lab = labels.get(p.id);
    if (lab && lab.size.some((s, i) => s !== img.size[i])) {
      throw new MedsegIoError('BAD_GEOMETRY', `label size ${lab.size.join('x')} differs from image size ${img.size.join('x')}`, p.label!);
    }
    if (img.channels === 1 && p.image.toLowerCase().endsWith(ending)) {
      await copyFile(p.image, join(outDir, `images${split}`, `${p.id}_0000${ending}`));
    } else {
      for (let c = 0; c < img.channels; c++)
        await writeVolume(join(outDir, `images${split}`, `${p.id}_${String(c).padStart(4, '0')}${ending}`), channelOf(img, c));
    }
    if (lab) {
      const out = new Uint8Array(lab.data.length);
      for (let i = 0; i < out.length; i++) out[i] = mapping.get(lab.data[i]!)!;
      await writeVolume(join(outDir, `labels${split}`, p.id + ending), { ...lab, data: out, meta: { ...lab.meta, extra: undefined } });
    }
    if (p.regionMask) {
      const m = await readVolume(p.regionMask);
      const out = new Uint8Array(voxelCount(m));
      for (let i = 0; i < out.length; i++) out[i] = m.data[i]! > 0 ? 1 : 0;
      await writeVolume(join(outDir, `masks${split}`, p.id + ending), { ...m, channels: 1, data: out });
    }
  }
  const channelNames = o.channelNames ?? defaultChannelNames(nChannels);
  if (channelNames.length !== nChannels)
    throw new MedsegIoError('BAD_DATA', `channelNames lists ${channelNames.length} names for ${nChannels} channels`, outDir);
  const labelsJson: Record<string, number> = {};
  for (const id of ids) labelsJson[o.labelNames?.[id] ?? (id === 0 ? 'background' : `class_${inverse.get(id)}`)] = id;
  if (Object.keys(labelsJson).length !== ids.length) throw new MedsegIoError('BAD_DATA', 'labelNames must be distinct', outDir);
  const json: Record<string, unknown> = {
    name: o.name,
    channel_names: Object.fromEntries(channelNames.map((n, i) => [String(i), n])),
    labels: labelsJson,
    numTraining: pairs.filter((p) => !p.test).length,
    file_ending: ending,
    label_mapping: Object.fromEntries([...mapping].map(([v, id]) => [String(v), id])),
  };
  if (pairs.some((p) => p.regionMask)) json.region_masks = 'masks';
  await writeFileAtomic(join(outDir, 'dataset.json'), JSON.stringify(json, null, 2) + '\n');
  return outDir;
}

/**
 * An image folder and a label folder whose files match by name stem
 * (hippocampus_001.nii.gz <-> hippocampus_001.nii.gz; 0.png <-> 0.png).
 * Images without a label are skipped unless they are listed in testIds.
 */
export async function importPairedFolders(imagesDir: string, labelsDir: string, outDir: string, o: ImportOptions): Promise<string> {
  const images = await listImages(imagesDir);
  const labelFiles = new Map((await listImages(labelsDir)).map((f) => [stemOf(f), f]));
  const test = new Set(o.testIds ?? []);
  const pairs: Pair[] = [];
  for (const f of images) {
    const stem = stemOf(f);
    const lf = labelFiles.get(stem);
    if (!lf && !test.has(stem)) continue;
    pairs.push({ id: (o.idPrefix ?? '') + stem, image: join(imagesDir, f), label: lf ? join(labelsDir, lf) : null, test: test.has(stem) });
  }
  const firstIs2d = images.length > 0 && /\.(png|tif|tiff|gif|bmp|jpe?g)$/i.test(images[0]!);
  return writeDataset(outDir, pairs, { ...o, fileEnding: o.fileEnding ?? (firstIs2d ? '.png' : '.nii.gz') });
}

/** The shared MSD Task04 hippocampus copy: images/ + labels/, classes 0, 1, 2. */
export function importMsdHippocampus(srcDir: string, outDir: string, o: Partial<ImportOptions> = {}): Promise<string> {
  return importPairedFolders(join(srcDir, 'images'), join(srcDir, 'labels'), outDir, {
    name: 'Hippocampus',
    channelNames: ['MRI'],
    labelNames: { 0: 'background', 1: 'Anterior', 2: 'Posterior' },
    ...o,
  });
}

/** ISBI 2012 EM: images/ + masks/ PNG; default mapping 0 (membrane) -> 0, 255 (cell) -> 1. */
export function importIsbi2012(srcDir: string, outDir: string, o: Partial<ImportOptions> = {}): Promise<string> {
  const mapping = o.labelMapping ?? { 0: 0, 255: 1 };
  const names = o.labelNames ?? (mapping[0] === 0 ? { 0: 'membrane', 1: 'cell' } : { 0: 'cell', 1: 'membrane' });
  return importPairedFolders(join(srcDir, 'images'), join(srcDir, 'masks'), outDir, {
    name: 'ISBI2012-EM',
    channelNames: ['EM'],
    fileEnding: '.png',
    ...o,
    labelMapping: mapping,
    labelNames: names,
  });
}

/**
 * DRIVE: training/images/NN_training.tif, training/1st_manual/NN_manual1.gif,
 * training/mask/NN_training_mask.gif (testing/ likewise). Vessels 255 -> 1;
 * the FOV mask goes to masksTr/ (1 inside the field of view).
 */
export async function importDrive(srcDir: string, outDir: string, o: Partial<ImportOptions> = {}): Promise<string> {
  const pairs: Pair[] = [];
  for (const [split, tag, test] of [
    ['training', 'training', false],
    ['testing', 'test', true],
  ] as const) {
    const dir = join(srcDir, split);
    if (!existsSync(dir)) continue;
    for (const f of await listImages(join(dir, 'images'))) {
      const m = /^(\d+)_/.exec(f);
      if (!m) continue;
      const n = m[1]!;
      const label = join(dir, '1st_manual', `${n}_manual1.gif`);
      const mask = join(dir, 'mask', `${n}_${tag}_mask.gif`);
      pairs.push({
        id: `${o.idPrefix ?? 'drive_'}${n}`,
        image: join(dir, 'images', f),
        label: existsSync(label) ? label : null,
        regionMask: existsSync(mask) ? mask : undefined,
        test,
      });
    }
  }
  return writeDataset(outDir, pairs, {
    name: 'DRIVE',
    channelNames: ['R', 'G', 'B'],
    labelMapping: { 0: 0, 255: 1 },
    labelNames: { 0: 'background', 1: 'vessel' },
    fileEnding: '.png',
    ...o,
  });
}
