/**
 * Reads a raw dataset folder in the nnU-Net v2 or Medical Segmentation
 * Decathlon layout into a list of cases:
 * - dataset.json: channel_names (v2) or modality (MSD); labels either
 *   {"background": 0, ...} (v2) or {"0": "background", ...} (MSD);
 *   file_ending (v2; MSD is .nii.gz); numTraining; optional label_mapping
 *   (original value -> class id, written by data/import.ts) and
 *   region_masks (folder prefix of per-case region masks, e.g. DRIVE's FOV).
 * - imagesTr/<id>_<cccc><ending> (v2: one file per channel) or
 *   imagesTr/<id><ending> (MSD: one 4D file holding every channel);
 *   labelsTr/<id><ending>; optional imagesTs/ (+ labelsTs/).
 * A bare images/ + labels/ pair (the shared MSD hippocampus copy) has no
 * dataset.json: import it first with data/import.ts (importImageLabelFolders).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';

export interface DatasetCase {
  id: string;
  /** One file per channel (v2), or a single multi-channel file (MSD). */
  imagePaths: string[];
  labelPath: string | null;
  /** Region of interest mask beside the label (DRIVE field of view), if any. */
  regionMaskPath?: string;
}

export interface Dataset {
  dir: string;
  name: string;
  /** Channel names in channel order (e.g. ['CT'], ['T1', 'T2'], ['R', 'G', 'B']). */
  channels: string[];
  /** Class name by class id, 0 = background; ids are 0..K-1. */
  labels: Record<number, string>;
  fileEnding: string;
  /** Original label value -> class id, when an import remapped values. */
  labelMapping?: Record<string, number>;
  training: DatasetCase[];
  test: DatasetCase[];
  /** imagesTr cases without a label file (read with { unlabelled: true }, for semi-supervised training). */
  unlabelled?: DatasetCase[];
}

const ENDINGS = ['.nii.gz', '.nii', '.nrrd', '.nhdr', '.png', '.tif', '.tiff', '.bmp', '.jpg', '.jpeg', '.gif'];

export function endingOf(name: string): string | undefined {
  const n = name.toLowerCase();
  return ENDINGS.find((e) => n.endsWith(e));
}

function bad(message: string, path: string): never {
  throw new MedsegIoError('BAD_DATA', message, path);
}

/** Parses both label forms into id -> name, checking ids are 0..K-1 with 0 present. */
export function parseLabels(raw: unknown, path: string): Record<number, string> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad('"labels" must be an object ({"background": 0, ...} or {"0": "background", ...})', path);
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    let id: number;
    let name: string;
    if (/^\d+$/.test(k) && typeof v === 'string') {
      id = Number(k); // MSD: {"0": "background"}
      name = v;
    } else if (typeof v === 'number' && Number.isInteger(v)) {
      id = v; // nnU-Net v2: {"background": 0}
      name = k;
    } else if (Array.isArray(v) || (typeof v === 'object' && v !== null)) {
      bad(`label "${k}" is a region (a list of ids): region-based training is not supported`, path);
    } else {
      bad(`label entry "${k}": ${JSON.stringify(v)} is neither {"name": id} nor {"id": "name"}`, path);
    }
    if (id in out) bad(`label id ${id} is given twice`, path);
    out[id] = name;
  }
  const ids = Object.keys(out)
    .map(Number)
    .sort((a, b) => a - b);
  if (ids[0] !== 0) bad('labels must include background with id 0', path);
  ids.forEach((id, i) => {
    if (id !== i) bad(`label ids must be consecutive 0..${ids.length - 1}; found ${ids.join(', ')} (import with a label mapping)`, path);
  });
  return out;
}

function parseChannels(meta: Record<string, unknown>, path: string): string[] {
  const raw = meta.channel_names ?? meta.modality;
  if (!raw || typeof raw !== 'object') bad('dataset.json needs "channel_names" (nnU-Net v2) or "modality" (MSD)', path);
  const entries = Object.entries(raw as Record<string, unknown>);
  const keys = entries.map(([k]) => Number(k));
  if (keys.some((k) => !Number.isInteger(k))) bad('channel keys must be "0", "1", ...', path);
  const sorted = entries.sort((a, b) => Number(a[0]) - Number(b[0]));
  sorted.forEach(([k], i) => {
    if (Number(k) !== i) bad(`channel keys must be consecutive from 0; found ${keys.join(', ')}`, path);
  });
  return sorted.map(([, v]) => String(v));
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && statSync(join(dir, f)).isFile())
    .sort();
}

/** Groups <id>_<cccc><ending> files into cases; falls back to one file per case (MSD). */
function collectCases(
  imagesDir: string,
  labelsDir: string | null,
  maskDir: string | null,
  ending: string,
  nChannels: number,
  required: boolean,
): DatasetCase[] {
  const files = listFiles(imagesDir).filter((f) => f.toLowerCase().endsWith(ending));
  const byId = new Map<string, Map<number, string>>();
  let suffixed = 0;
  for (const f of files) {
    const stem = f.slice(0, -ending.length);
    const m = /^(.*)_(\d{4})$/.exec(stem);
    if (m) suffixed++;
    const id = m ? m[1]! : stem;
    const ch = m ? Number(m[2]) : -1;
    if (!byId.has(id)) byId.set(id, new Map());
    byId.get(id)!.set(ch, join(imagesDir, f));
  }
  if (suffixed > 0 && suffixed !== files.length) bad('mixes files with and without _<cccc> channel suffixes', imagesDir);
  const cases: DatasetCase[] = [];
  for (const [id, chans] of [...byId].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    let imagePaths: string[];
    if (suffixed > 0) {
      imagePaths = [];
      for (let c = 0; c < nChannels; c++) {
        const p = chans.get(c);
        if (!p) bad(`case ${id} lacks channel ${String(c).padStart(4, '0')} (expected ${nChannels} channel files)`, imagesDir);
        imagePaths.push(p);
      }
      if (chans.size > nChannels) bad(`case ${id} has ${chans.size} channel files but dataset.json names ${nChannels}`, imagesDir);
    } else {
      imagePaths = [chans.get(-1)!];
    }
    let labelPath: string | null = null;
    if (labelsDir) {
      const p = join(labelsDir, id + ending);
      if (existsSync(p)) labelPath = p;
      else if (required) bad(`case ${id} has no label file ${basename(p)}`, labelsDir);
    }
    const c: DatasetCase = { id, imagePaths, labelPath };
    if (maskDir) {
      const p = join(maskDir, id + ending);
      if (existsSync(p)) c.regionMaskPath = p;
    }
    cases.push(c);
  }
  return cases;
}

/**
 * The images of a folder as unlabelled cases (`medseg train --unlabelled`):
 * <id>_<cccc><ending> per channel, or one file per case.
 */
export function readImageFolder(dirIn: string, fileEnding: string, nChannels: number): DatasetCase[] {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'image folder does not exist', dir);
  const cases = collectCases(dir, null, null, fileEnding, nChannels, false);
  if (cases.length === 0) bad(`holds no *${fileEnding} images`, dir);
  return cases;
}

/**
 * Reads a dataset folder. imagesTr cases without a label file are an error,
 * unless `o.unlabelled`: then they are listed in `unlabelled` (and
 * numTraining counts the labelled ones).
 */
export function readDataset(dirIn: string, o: { unlabelled?: boolean } = {}): Dataset {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'dataset folder does not exist', dir);
  const jsonPath = join(dir, 'dataset.json');
  if (!existsSync(jsonPath)) {
    const hint =
      existsSync(join(dir, 'images')) && existsSync(join(dir, 'labels'))
        ? ': this is a bare images/ + labels/ folder, import it with importImageLabelFolders (data/import.ts)'
        : '';
    throw new MedsegIoError('NOT_FOUND', `no dataset.json${hint}`, dir);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `dataset.json is not valid JSON (${(e as Error).message})`, jsonPath);
  }
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) bad('dataset.json must hold an object', jsonPath);
  const channels = parseChannels(meta, jsonPath);
  const labels = parseLabels(meta.labels, jsonPath);
  const fileEnding = typeof meta.file_ending === 'string' ? meta.file_ending : '.nii.gz';
  if (!endingOf('x' + fileEnding)) bad(`unsupported file_ending "${fileEnding}"`, jsonPath);
  const maskPrefix = typeof meta.region_masks === 'string' ? meta.region_masks : null;
  const all = collectCases(
    join(dir, 'imagesTr'),
    join(dir, 'labelsTr'),
    maskPrefix ? join(dir, maskPrefix + 'Tr') : null,
    fileEnding,
    channels.length,
    !o.unlabelled,
  );
  const training = all.filter((c) => c.labelPath !== null);
  const test = collectCases(join(dir, 'imagesTs'), join(dir, 'labelsTs'), maskPrefix ? join(dir, maskPrefix + 'Ts') : null, fileEnding, channels.length, false);
  if (training.length === 0) bad(all.length ? 'imagesTr/ holds no labelled case' : `imagesTr/ holds no *${fileEnding} images`, dir);
  if (typeof meta.numTraining === 'number' && meta.numTraining !== training.length) {
    bad(`dataset.json says numTraining = ${meta.numTraining} but imagesTr/ holds ${training.length} cases`, jsonPath);
  }
  const name = typeof meta.name === 'string' ? meta.name : basename(dir);
  const ds: Dataset = { dir, name, channels, labels, fileEnding, training, test };
  if (o.unlabelled) ds.unlabelled = all.filter((c) => c.labelPath === null);
  if (meta.label_mapping && typeof meta.label_mapping === 'object') ds.labelMapping = meta.label_mapping as Record<string, number>;
  return ds;
}
