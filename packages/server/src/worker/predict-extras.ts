/**
 * A job's prediction with the extras its submission asked for (job-extras.ts):
 * with uncertainty, the TTA passes run as members (as `medseg predict
 * --uncertainty`: labels from their mean probabilities, maps and the review
 * flag); with an explanation, a Grad-CAM(++) heat map of the first foreground
 * class over the predicted mask and its PNG overlay. The maps are written
 * beside the result.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { explainVolumes } from '@medseg/medseg/explain/explain-case';
import { predictVolumes, type LoadedModel, type Prediction } from '@medseg/medseg/infer/predict';
import { writeVolume } from '@medseg/medseg/io/read';
import { renderVolumeHeatOverlayPng } from '@medseg/medseg/explain/heat-overlay';
import { writeFileAtomic } from '@medseg/medseg/util/atomic-write';
import type { Volume } from '@medseg/medseg/io/volume';
import { jobMapPath, type JobExtras, type JobExtrasOutput, type JobMapName } from '../job-extras.ts';

export interface ExtrasPrediction {
  pred: Prediction;
  extras: JobExtrasOutput;
  /** Map files written (relative to the files folder): removed again when the job does not complete. */
  written: string[];
}

export interface PredictExtrasOptions {
  filesDir: string;
  jobId: string;
  attempt: number;
  keepProbabilities: boolean;
  /** Progress of the whole (prediction, then explanation) as a fraction; throws to stop. */
  onProgress: (fraction: number) => void;
}

/** The prediction and the maps asked for; on failure (a lost lease included) the maps written so far are removed. */
export async function predictWithExtras(model: LoadedModel, images: Volume[], wish: JobExtras, o: PredictExtrasOptions): Promise<ExtrasPrediction> {
  const written: string[] = [];
  try {
    return await predictInto(model, images, wish, o, written);
  } catch (e) {
    for (const f of written) await unlink(join(o.filesDir, f)).catch(() => undefined);
    throw e;
  }
}

async function predictInto(model: LoadedModel, images: Volume[], wish: JobExtras, o: PredictExtrasOptions, written: string[]): Promise<ExtrasPrediction> {
  const share = wish.explain ? 0.6 : 1;
  const pred = predictVolumes(model, images, {
    keepProbabilities: o.keepProbabilities,
    ...(wish.uncertainty ? { uncertainty: {} } : {}),
    onTile: (done, total) => o.onProgress((share * done) / total),
  });
  const extras: JobExtrasOutput = {};
  const maps: Partial<Record<JobMapName, string>> = {};
  const save = async (name: JobMapName, v: Volume) => {
    const rel = jobMapPath(o.jobId, o.attempt, name);
    written.push(rel);
    await writeVolume(join(o.filesDir, rel), v);
    maps[name] = rel;
  };
  const u = pred.uncertainty;
  if (u) {
    await save('entropy', u.entropy);
    await save('mutual-information', u.mutualInformation);
    extras.uncertainty = {
      score: u.triageScore,
      flagged: u.flagged,
      threshold: u.threshold,
      members: u.score.members,
      sources: u.sources,
      temperature: u.temperature,
      ...(u.triageNote ? { note: u.triageNote } : {}),
    };
  }
  if (wish.explain) {
    const e = explainVolumes(model, images, {
      method: wish.explain,
      faithfulness: false,
      onProgress: (_stage, done, total) => o.onProgress(share + ((1 - share) * done) / total),
    });
    await save('heatmap', e.heat);
    const first = images[0]!;
    const n = first.size[0] * first.size[1] * first.size[2];
    const mask = Uint8Array.from(e.labels.data as ArrayLike<number>, (l) => (l === e.classIndex ? 1 : 0));
    // The first channel's intensities (a multi-channel volume stores its channels one after another).
    const intensities = Array.prototype.slice.call(first.data, 0, n) as number[];
    const rel = jobMapPath(o.jobId, o.attempt, 'overlay');
    written.push(rel);
    await writeFileAtomic(join(o.filesDir, rel), renderVolumeHeatOverlayPng(intensities, e.heat.data, mask, first.size).png);
    maps.overlay = rel;
    extras.explanation = {
      method: wish.explain,
      classIndex: e.classIndex,
      layer: typeof e.settings.layer === 'string' ? e.settings.layer : null,
      massInRegion: e.massInRegion,
    };
  }
  if (written.length) extras.maps = maps;
  return { pred, extras, written };
}
