/**
 * `medseg explain` as a library call: read the input, explain it with a
 * model folder, and write beside each other in the output folder
 *   <id>_<method>.<ext>           the heat map on the input's grid, in the input's format
 *                                 (NIfTI, NRRD: float32; PNG: 0-255 scaled to the map's maximum;
 *                                 DICOM input: NIfTI)
 *   <id>_<method>_sc/             DICOM input only: the overlay of every slice as a Secondary
 *                                 Capture series of the source's study, for the PACS
 *   <id>_<method>_<map>.<ext>     attention's other maps
 *   <id>_<method>_overlay.png     image + predicted-mask outline + heat
 *   <id>_<method>.json            method, class, region, settings, and the faithfulness numbers
 * Every file is written atomically.
 */
import { basename, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Volume } from '../io/volume.ts';
import { writeVolume } from '../io/read.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { disposeModel, loadModel, readInputCase } from '../infer/predict.ts';
import { defaultOutputFormat } from '../infer/output-format.ts';
import { listFolds, weightsFile, type CheckpointChoice } from '../plan/model-folder.ts';
import { explainVolumes, type CaseExplanation, type CaseExplanationOptions } from './explain-case.ts';
import { renderHeatOverlaySlices, renderVolumeHeatOverlayPng } from './heat-overlay.ts';
import { buildSecondaryCaptureSeries } from '../io/dicom/secondary-capture-write.ts';
import type { ProgressReporter } from '../util/progress.ts';

export interface ExplainFileOptions extends CaseExplanationOptions {
  model: string;
  input: string;
  out: string;
  /** The fold whose network explains (default the first trained one). */
  foldNumber?: number;
  checkpoint?: CheckpointChoice;
  /** Progress of each stage (explanation, randomisation test, deletion curve) with ETA. */
  progress?: ProgressReporter;
}

export interface ExplainFileResult {
  heat: string;
  maps: string[];
  overlay: string;
  json: string;
  /** The Secondary Capture series' folder (DICOM input only). */
  secondaryCapture?: string;
  summary: Record<string, unknown>;
}

/** The case id of an input path: its file name without the image ending. */
export function caseId(path: string): string {
  return basename(path).replace(/(_0000)?\.(nii\.gz|nii|nrrd|nhdr|png|tiff?|jpe?g|bmp|gif|dcm)$/i, '');
}

/** A heat map as the PNG writer takes it: uint8, 0 at or below 0, 255 at the map's maximum. */
function heatAsUint8(v: Volume): Volume {
  let max = 0;
  for (let i = 0; i < v.data.length; i++) if (v.data[i]! > max) max = v.data[i]!;
  const out = new Uint8Array(v.data.length);
  if (max > 0) for (let i = 0; i < out.length; i++) out[i] = Math.round((255 * Math.max(0, v.data[i]!)) / max);
  return { ...v, data: out };
}

/** The JSON summary of an explanation (what `medseg explain --json` prints and the .json file holds). */
export function explanationSummary(
  e: CaseExplanation,
  files: { heat: string; maps: string[]; overlay: string; secondaryCapture?: string },
): Record<string, unknown> {
  return {
    method: e.method,
    class: e.classIndex,
    fold: e.fold,
    map: e.primary,
    region: e.region,
    settings: e.settings,
    massInRegion: e.massInRegion,
    faithfulness: e.faithfulness ?? null,
    seconds: e.seconds,
    files,
  };
}

/** Explains one input file with a model folder and writes the heat map, the overlay and the JSON under `out`. */
export async function explainFile(o: ExplainFileOptions): Promise<ExplainFileResult> {
  // One network explains: the fold asked for, else the first with weights (loading every fold would only cost time).
  const fold = o.foldNumber ?? listFolds(o.model).find((f) => weightsFile(f.dir) !== null)?.fold;
  const model = loadModel(o.model, { folds: fold === undefined ? undefined : [fold], checkpoint: o.checkpoint });
  try {
    const images = await readInputCase(o.input, model.plan.channels.length);
    let stage = '';
    const progress = o.progress;
    const onProgress = progress
      ? (s: string, done: number, total: number) => {
          if (s !== stage) {
            if (stage) progress.stop();
            stage = s;
            progress.start(total, `${caseId(o.input)} ${o.method}: ${s}`);
          }
          progress.update(done);
        }
      : undefined;
    let e: CaseExplanation;
    try {
      e = explainVolumes(model, images, { ...o, fold: 0, onProgress });
    } finally {
      if (stage) progress?.stop();
    }
    const format = defaultOutputFormat({ kind: 'image', path: o.input });
    const ending = format === 'nrrd' ? '.nrrd' : format === 'png' && e.heat.size[2] === 1 ? '.png' : '.nii.gz';
    const id = caseId(o.input);
    mkdirSync(o.out, { recursive: true });
    const write = async (name: string, v: Volume) => {
      const path = join(o.out, `${name}${ending}`);
      await writeVolume(path, ending === '.png' ? heatAsUint8(v) : v);
      return path;
    };
    const heat = await write(`${id}_${e.method}`, e.heat);
    const maps: string[] = [];
    for (const [name, v] of e.maps) if (name !== e.primary) maps.push(await write(`${id}_${e.method}_${name.replace(/[^\w.-]+/g, '_')}`, v));
    const first = images[0]!;
    const n = first.size[0] * first.size[1] * first.size[2];
    const mask = Uint8Array.from(e.labels.data as Uint8Array, (l) => (l === e.classIndex ? 1 : 0));
    // The first channel's intensities (a multi-channel volume stores its channels one after another).
    const intensities = (first.data as ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }).subarray(0, n);
    const { png } = renderVolumeHeatOverlayPng(intensities, e.heat.data, mask, first.size);
    const overlay = join(o.out, `${id}_${e.method}_overlay.png`);
    await writeFileAtomic(overlay, png);
    let secondaryCapture: string | undefined;
    if (first.meta.sopInstanceUIDs?.length === first.size[2]) {
      secondaryCapture = join(o.out, `${id}_${e.method}_sc`);
      mkdirSync(secondaryCapture, { recursive: true });
      const slices = renderHeatOverlaySlices(intensities, e.heat.data, mask, first.size);
      const files = buildSecondaryCaptureSeries(slices, first, {
        seriesDescription: `medseg ${e.method} class ${e.classIndex}`.slice(0, 64),
        derivationDescription: `${e.method} heat map of class ${e.classIndex} blended over the source slice; predicted mask outlined (medseg explain)`,
      });
      for (const [z, bytes] of files.entries()) await writeFileAtomic(join(secondaryCapture, `SC${String(z + 1).padStart(4, '0')}.dcm`), bytes);
    }
    const json = join(o.out, `${id}_${e.method}.json`);
    const summary = explanationSummary(e, { heat, maps, overlay, ...(secondaryCapture ? { secondaryCapture } : {}) });
    await writeJsonAtomic(json, summary);
    return { heat, maps, overlay, json, ...(secondaryCapture ? { secondaryCapture } : {}), summary };
  } finally {
    disposeModel(model);
  }
}
