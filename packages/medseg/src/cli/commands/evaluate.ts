/**
 * `medseg evaluate <predictions> <references>`: score a folder of predicted
 * label maps against reference label maps (eval/evaluate-folder.ts) and write
 * <out>/metrics.csv (one row per case and label) and <out>/summary.json (the
 * summary with bootstrap CIs, the per-case rows, and what was missing) —
 * the input of `medseg report`.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { evaluateFolder, type FolderEvaluation } from '../../eval/evaluate-folder.ts';
import { jsonSafeRow, type MetricRow as CaseRow } from '../../eval/metrics_rows.ts';
import type { CalibrationBins } from '../../eval/probabilistic.ts';
import { poolReliability } from '../../eval/probabilistic.ts';
import { writeFileAtomicSync } from '../../util/atomic-write.ts';
import { recordsToCsv } from '../../util/csv.ts';
import { log, parseNonNegative, parseNumberList, printResult, textTable, toJson, wantsJson } from '../output.ts';

export const SUMMARY_SCHEMA = 'medseg.evaluation/1';

export interface EvaluationSummaryFile {
  schema: typeof SUMMARY_SCHEMA;
  model: string;
  generatedAt: string;
  predictions: string;
  references: string;
  regionMasks: string | null;
  probabilities: string | null;
  pairing: string | null;
  binarize: boolean;
  labels: number[];
  tau: number;
  nCases: number;
  missingPredictions: string[];
  unmatchedPredictions: string[];
  /** Per label and metric: n, counts of NaN/Inf, mean, median, std, quartiles, bootstrap CI. */
  summary: FolderEvaluation['summary'];
  /** Per case and label, as in metrics.csv. */
  rows: FolderEvaluation['rows'];
  /** Reliability bins pooled over cases and labels (only with --probabilities). */
  calibration: CalibrationBins | null;
}

interface EvaluateCliOptions {
  labels?: number[] | 'auto';
  regionMasks?: string;
  probabilities?: string;
  tau: number;
  out: string;
  pattern?: RegExp;
  binarize?: boolean;
  model?: string;
  distances: boolean;
}

function parsePattern(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (e) {
    throw new InvalidArgumentError(`not a valid regular expression (${(e as Error).message})`);
  }
}

/** The folder's per-case reliability curves pooled into one. */
export function pooledCalibration(ev: FolderEvaluation): CalibrationBins | null {
  return poolReliability(ev.evaluations.flatMap((e) => e.classes.map((c) => c.reliability)));
}

const fmt = (v: number, digits: number) => (Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? v.toFixed(digits) : v > 0 ? '+Inf' : '-Inf');

function summaryTable(ev: FolderEvaluation): string {
  const shown = ['dice', 'iou', 'hd95', 'assd', 'surfaceDice', 'auc', 'ece'];
  const header = ['label', 'metric', 'mean', '95% CI', 'median', 'n', 'excluded'];
  const rows = ev.summary
    .filter((s) => shown.includes(s.metric))
    .map((s) => {
      const d = /hd|assd/.test(s.metric) ? 2 : 3;
      return [
        String(s.label),
        s.metric,
        fmt(s.mean, d),
        `[${fmt(s.ci.lower, d)}, ${fmt(s.ci.upper, d)}]`,
        fmt(s.median, d),
        String(s.nFinite),
        s.note ? s.note.replace(' excluded from statistics', '') : '',
      ];
    });
  return textTable(header, rows);
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score predicted label maps against references (Dice, IoU, HD95, ASSD, surface Dice, ...) with bootstrap CIs')
    .argument('<predictions>', 'folder of predicted label maps (.nii.gz, .nrrd, .png, ...)')
    .argument('<references>', 'folder of reference label maps, paired by case id (file name without extension; nnU-Net "_0000" tolerated)')
    .option('--labels <list>', 'labels to score, e.g. 1,2, or "auto": every non-zero value found (default)', (v: string) =>
      v.trim() === 'auto' ? 'auto' : parseNumberList(v),
    )
    .option('--region-masks <dir>', 'folder of region masks (non-zero = inside, e.g. a field of view): metrics only inside')
    .option('--probabilities <dir>', 'folder of probability maps (channel c = label c) for AUC and calibration')
    .option('--tau <mm>', 'surface Dice tolerance in mm', parseNonNegative, 1)
    .option('--out <dir>', 'where to write metrics.csv and summary.json', 'evaluation')
    .option('--pattern <regex>', 'case id = first capture group of this regex on each file name, e.g. "^(\\d+)_" for DRIVE', parsePattern)
    .option('--binarize', 'map every non-zero value to 1 (masks saved as 0/1 vs 0/255)')
    .option('--model <name>', 'model name in the outputs (default: the predictions folder name)')
    .option('--no-distances', 'skip HD/HD95/ASSD/surface Dice (faster on large volumes)')
    .addHelpText(
      'after',
      `
Missing predictions are failures, not skipped: the case is scored against an
empty prediction (Dice 0, HD95 +Inf) and flagged status=missing_prediction.
NaN (undefined, e.g. Dice with both masks empty) and +Inf values are counted
and left out of the means, never averaged as 0.

Examples:
  medseg evaluate preds/ labelsTs/ --labels 1,2 --out eval/
  medseg evaluate DRIVE/test/2nd_manual DRIVE/test/1st_manual --region-masks DRIVE/test/mask --pattern "^(\\d+)_" --binarize`,
    )
    .action(async (predictions: string, references: string, o: EvaluateCliOptions, cmd: Command) => {
      const json = wantsJson(cmd);
      const ev = await evaluateFolder({
        predictions,
        references,
        labels: o.labels ?? 'auto',
        regionMasks: o.regionMasks,
        probabilities: o.probabilities,
        tau: o.tau,
        pairing: o.pattern,
        binarize: o.binarize,
        model: o.model,
        distances: o.distances,
        onCase: ({ index, total, case: id }) => {
          if (!json || process.stderr.isTTY) log(`[${index + 1}/${total}] ${id}`);
        },
      });
      for (const id of ev.missingPredictions) log(`warning: no prediction for case ${id}: scored as an empty prediction (failure)`);
      for (const p of ev.unmatchedPredictions) log(`warning: prediction ${p} has no reference: not scored`);
      const out = resolve(o.out);
      mkdirSync(out, { recursive: true });
      const metricsCsv = join(out, 'metrics.csv');
      const summaryJson = join(out, 'summary.json');
      writeFileAtomicSync(metricsCsv, recordsToCsv(ev.rows));
      const file: EvaluationSummaryFile = {
        schema: SUMMARY_SCHEMA,
        model: ev.model,
        generatedAt: new Date().toISOString(),
        predictions: resolve(predictions),
        references: resolve(references),
        regionMasks: o.regionMasks ? resolve(o.regionMasks) : null,
        probabilities: o.probabilities ? resolve(o.probabilities) : null,
        pairing: o.pattern ? o.pattern.source : null,
        binarize: Boolean(o.binarize),
        labels: ev.labels,
        tau: ev.tau,
        nCases: ev.cases.length,
        missingPredictions: ev.missingPredictions,
        unmatchedPredictions: ev.unmatchedPredictions,
        summary: ev.summary,
        rows: ev.rows.map((r) => jsonSafeRow(r as CaseRow) as typeof r),
        calibration: pooledCalibration(ev),
      };
      writeFileAtomicSync(summaryJson, `${toJson(file)}\n`);
      printResult(
        cmd,
        {
          model: ev.model,
          nCases: ev.cases.length,
          labels: ev.labels,
          metricsCsv,
          summaryJson,
          missingPredictions: ev.missingPredictions,
          unmatchedPredictions: ev.unmatchedPredictions,
          summary: ev.summary,
        },
        () =>
          `${ev.model}: ${ev.cases.length} cases, labels ${ev.labels.join(', ')}${ev.missingPredictions.length ? `, ${ev.missingPredictions.length} missing predictions` : ''}\n\n${summaryTable(ev)}\n\nwrote ${metricsCsv}\n      ${summaryJson}`,
      );
    });
}
