/**
 * `medseg report <summary.json...> --out report.html`: one self-contained
 * HTML report (eval/report/html-report.ts) from the outputs of one or more
 * `medseg evaluate` runs, one per model. Models that share cases get paired
 * Wilcoxon tests; subgroups come from a CSV keyed by case id, model cards
 * from folders written by eval/report/modelcard.ts.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { SUMMARY_METRICS } from '../../eval/evaluate-folder.ts';
import type { ModelCardFaithfulness, ModelCardJson } from '../../eval/report/modelcard.ts';
import type { ExplanationRecord } from '../../eval/report/confidence-section.ts';
import { modelCardPaths } from '../../plan/model-folder.ts';
import type { CalibrationBins } from '../../eval/probabilistic.ts';
import { writeReport, type ModelInfo, type ReportInput } from '../../eval/report/html-report.ts';
import { readSubgroupsCsv } from '../../eval/subgroups-csv.ts';
import { distinct, metricColumns, metricValue, type MetricRow } from '../../eval/statistics/rows.ts';
import { MedsegIoError } from '../../io/errors.ts';
import { fsError } from '../../io/limits.ts';
import { CliUsageError } from '../errors.ts';
import { log, parseStringList, printResult } from '../output.ts';
import { SUMMARY_SCHEMA, type EvaluationSummaryFile } from './evaluate.ts';
import { loadExplanationFolder, loadUncertaintyFolder } from '../../eval/report/confidence-inputs.ts';

const ID_KEYS = new Set(['model', 'case', 'label', 'status']);

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `${what} is not valid JSON (${(e as Error).message})`, path);
  }
}

/** A summary.json of `medseg evaluate` (a folder holding one is accepted too), rows with numbers restored. */
export async function loadEvaluation(arg: string): Promise<EvaluationSummaryFile & { path: string }> {
  let path = resolve(arg);
  if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'summary.json');
  const j = (await readJson(path, 'summary')) as Partial<EvaluationSummaryFile> | null;
  if (!j || typeof j !== 'object' || j.schema !== SUMMARY_SCHEMA) {
    throw new MedsegIoError(
      'BAD_DATA',
      `not a summary written by "medseg evaluate" (expected schema ${SUMMARY_SCHEMA}); run medseg evaluate and pass its summary.json`,
      path,
    );
  }
  if (!Array.isArray(j.rows) || j.rows.length === 0) throw new MedsegIoError('BAD_DATA', 'summary has no per-case rows', path);
  const rows = j.rows.map((r, i) => {
    if (!r || typeof r !== 'object' || typeof r.case !== 'string' || (typeof r.label !== 'number' && typeof r.label !== 'string')) {
      throw new MedsegIoError('BAD_DATA', `row ${i} has no case id or label`, path);
    }
    const out: MetricRow = { model: String(j.model ?? ''), case: r.case, label: r.label };
    for (const [k, v] of Object.entries(r)) {
      if (ID_KEYS.has(k)) {
        if (k === 'status') out[k] = String(v);
        continue;
      }
      const n = metricValue(r, k);
      if (n !== undefined) out[k] = n;
    }
    return out;
  });
  return { ...(j as EvaluationSummaryFile), rows, path };
}

async function loadCard(dir: string): Promise<{ card: ModelCardJson; href: string }> {
  const { json: jsonPath, markdown: md } = modelCardPaths(resolve(dir));
  const card = (await readJson(jsonPath, 'model card')) as ModelCardJson;
  if (card?.schema !== 'medseg.modelcard/1' || !card.model?.name)
    throw new MedsegIoError('BAD_DATA', 'not a medseg model card (schema medseg.modelcard/1)', jsonPath);
  return { card, href: existsSync(md) ? md : jsonPath };
}

/** A model card's faithfulness numbers as a row of the report's explanation table. */
function cardExplanation(model: string, f: ModelCardFaithfulness): ExplanationRecord {
  return {
    model,
    case: `${f.case} (validation, model card)`,
    method: f.method,
    classIndex: f.classIndex,
    massInRegion: f.massInRegion,
    randomisation: f.randomisation,
    deletion: f.deletion,
    seconds: f.seconds,
  };
}

interface ReportCliOptions {
  out: string;
  names?: string[];
  subgroups?: string;
  cards?: string[];
  title: string;
  dataset?: string;
  metrics?: string[];
  uncertainty?: string[];
  explanations?: string[];
  failureBelow?: number;
}

function parseUnitInterval(v: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0 || x > 1) throw new CliUsageError(`--failure-below takes a number in 0..1, not "${v}"`);
  return x;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('self-contained HTML report comparing one or more evaluated models (CIs, box plots, paired Wilcoxon, subgroups)')
    .argument('<summaries...>', 'summary.json files written by "medseg evaluate" (or their folders), one per model')
    .option('--out <file>', 'HTML file to write', 'report.html')
    .option('--names <list>', 'model names in the order of the summaries (default: the names stored in them)', parseStringList)
    .option('--subgroups <file.csv>', 'CSV with a case id column (case, case_id or the first column) and group columns (site, scanner, ...)')
    .option('--cards <dirs...>', 'folders holding model-card.json/.md, linked from the report (matched by model name, else by order)')
    .option('--title <text>', 'report title', 'Segmentation evaluation')
    .option('--dataset <text>', 'dataset name shown in the header')
    .option('--metrics <list>', 'metrics of the summary table and paired tests (default: dice, hd95, assd, surfaceDice)', parseStringList)
    .option(
      '--uncertainty <dirs...>',
      'prediction folders of "medseg predict --uncertainty" (their <case>_uncertainty.json), one per summary in the same order',
    )
    .option('--explanations <dirs...>', 'output folders of "medseg explain", one per summary in the same order')
    .option(
      '--failure-below <dice>',
      'a case whose Dice (averaged over labels) is below this counts as a failure for the uncertainty AUROC',
      parseUnitInterval,
      0.8,
    )
    .addHelpText(
      'after',
      `
Example:
  medseg evaluate preds/unet labelsTs --out eval/unet
  medseg evaluate preds/unetr labelsTs --out eval/unetr
  medseg report eval/unet/summary.json eval/unetr/summary.json --out report.html --subgroups sites.csv
  medseg predict models/unet imagesTs --out preds/unet --uncertainty
  medseg explain models/unet imagesTs/case_001.nii.gz --method gradcam --out explain/unet
  medseg report eval/unet --uncertainty preds/unet --explanations explain/unet --out report.html`,
    )
    .action(async (summaries: string[], o: ReportCliOptions, cmd: Command) => {
      if (o.names && o.names.length !== summaries.length) {
        throw new CliUsageError(`--names gives ${o.names.length} names for ${summaries.length} summaries`);
      }
      const evals = [];
      for (const s of summaries) evals.push(await loadEvaluation(s));
      const names = evals.map((ev, i) => o.names?.[i] ?? ev.model);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup !== undefined) throw new CliUsageError(`two summaries are both named "${dup}": give distinct names with --names a,b`);
      const rows: MetricRow[] = evals.flatMap((ev, i) => ev.rows.map((r) => ({ ...r, model: names[i]! })));

      const outPath = resolve(o.out);
      const models: ModelInfo[] = names.map((name) => ({ name }));
      // Faithfulness checked at training end (model cards), shown beside those of `medseg explain`.
      const cardExplanations: ExplanationRecord[] = [];
      if (o.cards) {
        const cards = [];
        for (const d of o.cards) cards.push(await loadCard(d));
        cards.forEach(({ card, href }, k) => {
          const i = names.indexOf(card.model.name) >= 0 ? names.indexOf(card.model.name) : cards.length === names.length ? k : -1;
          if (i < 0) return log(`warning: model card for "${card.model.name}" matches no model (${names.join(', ')}): not linked`);
          Object.assign(models[i]!, {
            architecture: card.model.architecture,
            architectureType: card.model.architectureType ?? undefined,
            parameters: card.model.parameters ?? undefined,
            modelCardHref: relative(dirname(outPath), href),
          });
          if (card.faithfulness) cardExplanations.push(cardExplanation(names[i]!, card.faithfulness));
        });
      }
      const calibration: Record<string, CalibrationBins> = {};
      evals.forEach((ev, i) => {
        if (ev.calibration) calibration[names[i]!] = ev.calibration;
      });
      const present = metricColumns(rows);
      const summaryMetrics = o.metrics ?? ['dice', 'hd95', 'assd', 'surfaceDice'].filter((m) => present.includes(m));
      for (const m of summaryMetrics) if (!present.includes(m)) throw new CliUsageError(`metric "${m}" is not in the summaries (have: ${present.join(', ')})`);
      const input: ReportInput = {
        title: o.title,
        dataset: o.dataset,
        rows,
        models,
        summaryMetrics,
        plotMetrics: SUMMARY_METRICS.filter((m) => present.includes(m) && m !== 'relVolumeDiff'),
        primaryMetric: summaryMetrics[0],
        calibration: Object.keys(calibration).length ? calibration : undefined,
        directions: { absVolumeDiff: 'lower' },
      };
      for (const [flag, dirs] of [
        ['--uncertainty', o.uncertainty],
        ['--explanations', o.explanations],
      ] as const) {
        if (dirs && dirs.length !== names.length)
          throw new CliUsageError(`${flag} gives ${dirs.length} folders for ${summaries.length} summaries (one per summary, in order)`);
      }
      if (o.uncertainty) {
        const all = [];
        for (const [i, d] of o.uncertainty.entries()) all.push(...(await loadUncertaintyFolder(d, names[i]!)));
        input.uncertainty = all;
      }
      const explanations = [...cardExplanations];
      if (o.explanations) for (const [i, d] of o.explanations.entries()) explanations.push(...(await loadExplanationFolder(d, names[i]!)));
      if (explanations.length) input.explanations = explanations;
      if (o.failureBelow !== undefined) input.failureBelow = o.failureBelow;
      if (o.subgroups) {
        const { subgroups, columns } = await readSubgroupsCsv(o.subgroups);
        input.subgroups = subgroups;
        input.subgroupColumns = columns;
      }
      await writeReport(outPath, input);
      const nCases = distinct(rows, 'case').length;
      printResult(
        cmd,
        { report: outPath, models: names, nCases },
        () => `wrote ${outPath} (${names.length} model${names.length > 1 ? 's' : ''}, ${nCases} cases)`,
      );
    });
}
