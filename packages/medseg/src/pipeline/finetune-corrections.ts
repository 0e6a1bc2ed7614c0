/**
 * `medseg finetune <model> --corrections <dir>`: a new version of a model
 * folder, trained further on segmentations a person corrected (the viewer's
 * saved masks, or any label files), as MONAI Label's active-learning loop
 * does. Every fold of the model continues training from its weights on its
 * own training cases plus the corrected cases, drawn about as often as all
 * the others together (a handful of corrections would otherwise vanish
 * among a dataset's cases), at the plan's optimizer and loss with the
 * learning rate scaled down, within the time budget (split between the
 * folds). A corrected case replaces the same case's original label; one in
 * a fold's validation cases leaves them (it would score the model on the
 * label it learnt). The validation Dice before and after is measured the
 * same way (the trainer's: sliding window, no TTA) and goes into the new
 * folder's finetune.json and model card, with the corrections used (file
 * hashes) and the model it came from.
 *
 * The new folder is written beside its destination and renamed into place
 * when complete, so a failed or killed run leaves no half-written model.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { endingOf, readDataset, readImageFolder, type Dataset, type DatasetCase } from '../data/dataset.ts';
import { loadPreprocessed, preprocessDataset } from '../data/preprocess.ts';
import { addSectionToModelCard, writeSectionOnlyModelCard } from '../eval/report/modelcard.ts';
import { MedsegIoError } from '../io/errors.ts';
import { createNetwork } from '../models/registry.ts';
import { foldDir, foldFile, listFolds, modelCardPaths, modelFile, weightsFile } from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { loadPlan } from '../plan/store.ts';
import { train } from '../train/trainer.ts';
import { trainerConfig } from '../train/trainer-config.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { readFoldSplit } from './splits.ts';
import { FineTuneError, meanValidationDice } from './finetune-pruned.ts';
import { cacheDirFor, loaderData } from './train-model.ts';

export interface FineTuneCorrectionsOptions {
  /** The model folder to start from (left unchanged). */
  model: string;
  /** images/ and labels/ with one corrected label file per image, named alike. */
  corrections: string;
  /** The dataset folder the model was trained on (its folds' training and validation cases). */
  dataset: string;
  /** The new model folder (must not exist). */
  out: string;
  /** Wall-time budget in minutes over all folds (> 0). */
  minutes: number;
  /** Learning rate relative to the plan's (default 0.1). */
  lrScale?: number;
  seed?: number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
}

export interface CorrectionRecord {
  id: string;
  image: string;
  label: string;
  /** SHA-256 of the corrected label file. */
  labelSha256: string;
}

export interface FoldFineTune {
  fold: number;
  trainingCases: number;
  /** Draws of the corrected cases per epoch's worth of the others (each correction listed this many times). */
  correctionRepeats: number;
  validationCases: number;
  /** Validation cases left out because they were corrected. */
  validationLeftOut: string[];
  validationDiceBefore: number;
  validationDiceAfter: number;
  epochs: number;
  minutes: number;
  stoppedBy: string;
  lr: number;
}

export interface FineTuneCorrectionsRecord {
  schema: 'medseg.finetune/1';
  date: string;
  derivedFrom: { model: string; weightsSha256: Record<string, string> };
  corrections: CorrectionRecord[];
  budgetMinutes: number;
  lrScale: number;
  folds: FoldFineTune[];
}

const RECORD_FILE = 'finetune.json';
const CORRECTION_PREFIX = 'correction_';
const HEADING = '## Fine-tuned on corrections';

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The corrected cases of a corrections folder: images/<id><ending> (or <id>_<cccc> per channel) and labels/<id><ending>. */
export function readCorrections(dir: string, nChannels: number): DatasetCase[] {
  const images = join(dir, 'images');
  const labels = join(dir, 'labels');
  if (!existsSync(images) || !existsSync(labels)) throw new MedsegIoError('NOT_FOUND', 'a corrections folder holds images/ and labels/', dir);
  const endings = new Set(
    readdirSync(images)
      .filter((f) => statSync(join(images, f)).isFile())
      .map((f) => endingOf(f))
      .filter((e): e is string => e !== undefined),
  );
  if (endings.size !== 1)
    throw new MedsegIoError('BAD_DATA', `images/ must hold one kind of image file, found ${endings.size ? [...endings].join(', ') : 'none'}`, images);
  const ending = [...endings][0]!;
  const cases = readImageFolder(images, ending, nChannels);
  return cases.map((c) => {
    const label = join(labels, `${c.id}${ending}`);
    if (!existsSync(label)) throw new MedsegIoError('NOT_FOUND', `the corrected case ${c.id} has no label file`, label);
    return { ...c, labelPath: label };
  });
}

function describe(r: FineTuneCorrectionsRecord): string[] {
  const L = [
    HEADING,
    '',
    `Fine-tuned from \`${r.derivedFrom.model}\` on ${r.date.slice(0, 10)} with ${r.corrections.length} corrected case(s) (${r.corrections.map((c) => c.id).join(', ')}), ${r.budgetMinutes} min in all, learning rate x${r.lrScale}. The sections above describe the model before fine-tuning.`,
    '',
    '| Fold | Training cases | Corrections drawn x | Validation cases | Validation Dice before | after | change | Epochs | Minutes |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const f of r.folds) {
    L.push(
      `| ${f.fold} | ${f.trainingCases} | ${f.correctionRepeats} | ${f.validationCases}${f.validationLeftOut.length ? ` (${f.validationLeftOut.length} corrected, left out)` : ''} | ${f.validationDiceBefore.toFixed(4)} | ${f.validationDiceAfter.toFixed(4)} | ${(f.validationDiceAfter - f.validationDiceBefore >= 0 ? '+' : '') + (f.validationDiceAfter - f.validationDiceBefore).toFixed(4)} | ${f.epochs} | ${f.minutes.toFixed(2)} |`,
    );
  }
  L.push('', 'Validation Dice: mean over cases and classes, sliding window without TTA, as the trainer validates.');
  return L;
}

export async function fineTuneOnCorrections(o: FineTuneCorrectionsOptions): Promise<{ out: string; record: FineTuneCorrectionsRecord }> {
  if (!(Number.isFinite(o.minutes) && o.minutes > 0)) throw new FineTuneError(`the fine-tuning budget must be a number of minutes > 0, got ${o.minutes}`);
  const lrScale = o.lrScale ?? 0.1;
  if (!(Number.isFinite(lrScale) && lrScale > 0)) throw new FineTuneError(`the fine-tuning learning-rate scale must be > 0, got ${lrScale}`);
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const model = resolve(o.model);
  const out = resolve(o.out);
  if (existsSync(out)) throw new FineTuneError(`${out} exists: the fine-tuned model is a new folder`);
  const plan = loadPlan(modelFile(model, 'plan'));
  const folds = listFolds(model).filter((f) => weightsFile(f.dir) !== null);
  if (folds.length === 0) throw new MedsegIoError('NOT_FOUND', 'the model folder has no trained fold', model);
  const corrected = readCorrections(o.corrections, plan.channels.length);
  const correctedIds = new Set(corrected.map((c) => c.id));
  const ds = readDataset(o.dataset);

  const partial = `${out}.partial`;
  rmSync(partial, { recursive: true, force: true });
  const work = mkdtempSync(join(tmpdir(), 'medseg-finetune-corrections-'));
  try {
    // The dataset's cases come from its shared cache; the corrections are preprocessed beside links to them.
    const shared = cacheDirFor(ds, plan, work);
    await preprocessDataset(ds, plan, shared);
    const cache = join(work, 'cache');
    const corrections: Dataset = { ...ds, dir: resolve(o.corrections), training: corrected.map((c) => ({ ...c, id: CORRECTION_PREFIX + c.id })), test: [] };
    await preprocessDataset(corrections, plan, cache);
    for (const c of ds.training) for (const ext of ['bin', 'json']) symlinkSync(join(shared, `${c.id}.${ext}`), join(cache, `${c.id}.${ext}`));

    cpSync(model, partial, { recursive: true, filter: (src) => basename(src) !== 'preprocessed' });
    const record: FineTuneCorrectionsRecord = {
      schema: 'medseg.finetune/1',
      date: new Date().toISOString(),
      derivedFrom: { model, weightsSha256: Object.fromEntries(folds.map((f) => [`fold_${f.fold}`, sha256(weightsFile(f.dir)!)])) },
      corrections: corrected.map((c) => ({
        id: c.id,
        image: c.imagePaths.map((p) => resolve(p)).join(','),
        label: resolve(c.labelPath!),
        labelSha256: sha256(c.labelPath!),
      })),
      budgetMinutes: o.minutes,
      lrScale,
      folds: [],
    };
    const seed = o.seed ?? 12345;
    for (const f of folds) {
      const split = readFoldSplit(model, f.fold);
      const trainIds = split.train.filter((id) => !correctedIds.has(id));
      const valIds = split.val.filter((id) => !correctedIds.has(id));
      if (valIds.length === 0) throw new FineTuneError(`fold ${f.fold} has no validation case left that was not corrected`);
      const repeats = Math.max(1, Math.round(trainIds.length / corrected.length));
      const ids = [...trainIds, ...Array.from({ length: repeats }, () => corrected.map((c) => CORRECTION_PREFIX + c.id)).flat()];
      const validation = await Promise.all(valIds.map((id) => loadPreprocessed(cache, id)));
      const net = createNetwork(plan.network);
      try {
        loadWeightsInto(net, weightsFile(f.dir)!);
        const before = meanValidationDice(net, validation, plan);
        const minutes = o.minutes / folds.length;
        // A fine-tuning run keeps its best epoch's weights: no weight average.
        const cfg = {
          ...trainerConfig(plan),
          timeBudgetMinutes: minutes,
          lr: plan.training.lr * lrScale,
          warmupEpochs: 0,
          checkpointEvery: 1_000_000,
          weightAveraging: undefined,
        };
        torch.manualSeed(seed + f.fold);
        const foldWork = join(work, `fold_${f.fold}`);
        log(
          `finetune fold ${f.fold}: ${trainIds.length} training cases + ${corrected.length} corrected x${repeats}, ${valIds.length} validation cases, Dice before ${before.toFixed(4)}`,
        );
        const result = await train(net, cfg, loaderData(cache, ids, plan, seed + f.fold, 1, validation), foldWork, {
          progress: o.progress ?? createProgress('auto'),
        });
        // The best epoch's weights when one was kept, else the last (a budget shorter than one validation).
        const tuned = result.bestEpoch >= 0 ? foldFile(foldWork, 'best') : foldFile(foldWork, 'final');
        const dest = foldDir(partial, f.fold);
        for (const file of ['best', 'final'] as const) copyFileSync(tuned, foldFile(dest, file));
        rmSync(foldFile(dest, 'checkpoint'), { force: true });
        const after = result.bestEpoch >= 0 ? result.bestDice : meanValidationDice(net, validation, plan);
        record.folds.push({
          fold: f.fold,
          trainingCases: trainIds.length,
          correctionRepeats: repeats,
          validationCases: valIds.length,
          validationLeftOut: split.val.filter((id) => correctedIds.has(id)),
          validationDiceBefore: before,
          validationDiceAfter: after,
          epochs: result.epochsRun,
          minutes: result.minutes,
          stoppedBy: result.stoppedBy,
          lr: cfg.lr,
        });
        log(`finetune fold ${f.fold}: validation Dice ${before.toFixed(4)} -> ${after.toFixed(4)} in ${result.epochsRun} epochs`);
      } finally {
        net.dispose();
      }
    }
    writeJsonAtomicSync(join(partial, RECORD_FILE), record);
    const card = modelCardPaths(partial);
    if (existsSync(card.markdown) && existsSync(card.json)) addSectionToModelCard(card, HEADING, describe(record), 'fineTuning', record);
    else writeSectionOnlyModelCard(card, basename(out), describe(record), 'fineTuning', record);
    renameSync(partial, out);
    return { out, record };
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(partial, { recursive: true, force: true });
  }
}
