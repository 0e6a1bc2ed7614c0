/**
 * Model cards (Markdown for people, JSON for tools) for each trained model:
 * what it was trained on, how, how well it validated (with CIs), what it is
 * for, where it fails, and that it is for research use only.
 */
import { ttaLevelsMarkdown, type TtaLevelRow } from './tta-levels-card.ts';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../../util/atomic-write.ts';
import { jsonNumberReplacer } from '../metrics_rows.ts';
import { MedsegStatsError } from '../statistics/errors.ts';
import { metricColumns, metricDirection, metricValue, type Direction, type MetricRow } from '../statistics/rows.ts';
import { aggregate, type BootstrapOptions } from '../statistics/summary.ts';
import type { Hardware } from '../statistics/timing.ts';
import type { ModelComparison } from '../comparison.ts';

export const RESEARCH_DISCLAIMER =
  'For research use only. Not a medical device: not cleared or approved for clinical diagnosis, treatment or ' +
  'patient management. Outputs must be reviewed by a qualified professional; performance on data unlike the ' +
  'training and validation data is unknown.';

export interface ModelCardInput {
  modelName: string;
  version?: string;
  /** Architecture name, e.g. "3D U-Net (nnU-Net 3d_fullres)". */
  architecture: string;
  /** Family for comparison tables: "CNN", "Transformer", "Hybrid CNN–Transformer", ... */
  architectureType?: string;
  parameters?: number;
  data: {
    dataset: string;
    cases: number;
    modality: string;
    trainingCases?: number;
    validationCases?: number;
    labels?: Record<string, string>;
    source?: string;
  };
  /** Flat summary of the plan (patch size, spacing, normalisation, ...). */
  plan?: Record<string, string | number | boolean | readonly (string | number)[]>;
  training?: {
    epochs?: number;
    iterations?: number;
    wallTimeHours?: number;
    /** Free-text budget, e.g. "8 h on 2 CPU cores". */
    budget?: string;
    seed?: number;
    hardware?: Hardware;
    /** Transfer learning: where the starting weights came from. */
    initialisation?: string;
    /** Synthetic (GAN-generated) training pairs mixed in: how many, from where, at what ratio. */
    syntheticData?: string;
    /** Semi-supervised training: the method and the unlabelled cases. */
    semiSupervised?: string;
  };
  /** Per-case validation rows of this model (other models' rows are ignored). */
  validation: readonly MetricRow[];
  metrics?: string[];
  /** Metric used to list failure cases (default 'dice' if present). */
  failureMetric?: string;
  /** How many worst cases to list (default 5). */
  failureCount?: number;
  intendedUse?: string;
  outOfScope?: string;
  bootstrap?: BootstrapOptions;
  directions?: Record<string, Direction>;
  /** ISO date of the card (default today). */
  date?: string;
  /** How this model did against others on the same cases (see eval/comparison.ts). */
  comparison?: ModelCardComparison;
  /** Confidence on the validation cases: temperature scaling and the triage rule (the model folder's calibration.json). */
  calibration?: ModelCardCalibration;
  /** Seconds and Dice of each test-time augmentation level on the same validation cases. */
  ttaLevels?: TtaLevelRow[];
  /** How faithful an explanation of the model is, checked on a validation case at the end of training. */
  faithfulness?: ModelCardFaithfulness;
}

/**
 * One explanation method's faithfulness checks on one validation case: the
 * model-parameter randomisation test and the deletion curve
 * (explain/faithfulness.ts).
 */
export interface ModelCardFaithfulness {
  method: string;
  /** The layer a Grad-CAM looked at. */
  layer: string | null;
  classIndex: number;
  className: string | null;
  case: string;
  fold: number;
  /** Why this case. */
  caseChoice: string;
  /** Voxels of the explained region (the class's predicted mask, on the network's grid). */
  regionVoxels: number;
  /** Share of the map's positive mass inside the region. */
  massInRegion: number;
  /** Spearman rank correlation with a freshly initialised network's map, of the values and of their absolute values; passes when both are below 0.5. */
  randomisation: { spearman: number; spearmanAbs: number; passes: boolean; seed: number };
  /** Area under the Dice-against-deleted-fraction curve, deleting in the map's order and in a random order (lower is more faithful). */
  deletion: { auc: number; randomAuc: number; steps: number };
  seconds: number;
}

export interface ModelCardCalibration {
  temperature: number;
  voxels: number;
  ece: { before: number; after: number };
  members: number;
  triage?: { threshold: number; failureDice: number; capturedFailures: number; flaggedFraction: number; auroc: number | null; cases: number; failures: number };
}

export interface ModelCardComparison {
  /** Where and how the comparison was run (data, budget, command). */
  context: string;
  results: ModelComparison[];
}

export interface ModelCardJson {
  schema: 'medseg.modelcard/1';
  model: { name: string; version: string | null; architecture: string; architectureType: string | null; parameters: number | null };
  date: string;
  data: ModelCardInput['data'];
  plan: ModelCardInput['plan'] | null;
  training: ModelCardInput['training'] | null;
  validation: {
    label: string;
    metric: string;
    n: number;
    nFinite: number;
    nNaN: number;
    nPosInf: number;
    nNegInf: number;
    mean: number;
    median: number;
    std: number;
    ci95: [number, number];
    note: string;
  }[];
  failureCases: { case: string; label: string; metric: string; value: number }[];
  intendedUse: string;
  outOfScope: string;
  disclaimer: string;
  comparison?: ModelCardComparison;
  calibration?: ModelCardCalibration;
  ttaLevels?: TtaLevelRow[];
  faithfulness?: ModelCardFaithfulness;
}

const DEFAULT_USE =
  'Research on automated segmentation of the structures listed above, on images of the same modality and a ' +
  'similar acquisition protocol as the training data; comparison with other methods; generation of draft ' +
  'contours for expert review.';
const DEFAULT_OUT_OF_SCOPE =
  'Clinical decision making; other modalities, anatomies, paediatric or pathological presentations not ' +
  'represented in the training data; images with severe artefacts.';

export function buildModelCard(input: ModelCardInput): { markdown: string; json: ModelCardJson } {
  if (!input.modelName) throw new MedsegStatsError('BAD_INPUT', 'model card needs a model name');
  const rows = input.validation.filter((r) => r.model === input.modelName);
  if (rows.length === 0) {
    throw new MedsegStatsError('NO_DATA', `no validation rows for model ${input.modelName}`);
  }
  const metrics = input.metrics ?? metricColumns(rows);
  const agg = aggregate(rows, { metrics, bootstrap: input.bootstrap });
  const failureMetric = input.failureMetric ?? (metrics.includes('dice') ? 'dice' : metrics[0]);
  const count = input.failureCount ?? 5;
  let failureCases: ModelCardJson['failureCases'] = [];
  if (failureMetric) {
    const dir = metricDirection(failureMetric, input.directions);
    // NaN (undefined metric) cannot be ranked; ±Inf ranks as the extreme it is (e.g. HD95 of an empty prediction)
    failureCases = rows
      .map((r) => ({ case: r.case, label: String(r.label), metric: failureMetric, value: metricValue(r, failureMetric) ?? Number.NaN }))
      .filter((c) => !Number.isNaN(c.value))
      .sort((a, b) => (dir === 'higher' ? a.value - b.value : b.value - a.value))
      .slice(0, count);
  }
  const json: ModelCardJson = {
    schema: 'medseg.modelcard/1',
    model: {
      name: input.modelName,
      version: input.version ?? null,
      architecture: input.architecture,
      architectureType: input.architectureType ?? null,
      parameters: input.parameters ?? null,
    },
    date: input.date ?? new Date().toISOString().slice(0, 10),
    data: input.data,
    plan: input.plan ?? null,
    training: input.training ?? null,
    validation: agg.map((a) => ({
      label: String(a.label),
      metric: a.metric,
      n: a.n,
      nFinite: a.nFinite,
      nNaN: a.nNaN,
      nPosInf: a.nPosInf,
      nNegInf: a.nNegInf,
      mean: a.mean,
      median: a.median,
      std: a.std,
      ci95: [a.ci.lower, a.ci.upper],
      note: a.note,
    })),
    failureCases,
    intendedUse: input.intendedUse ?? DEFAULT_USE,
    outOfScope: input.outOfScope ?? DEFAULT_OUT_OF_SCOPE,
    disclaimer: RESEARCH_DISCLAIMER,
    ...(input.comparison ? { comparison: input.comparison } : {}),
    ...(input.calibration ? { calibration: input.calibration } : {}),
    ...(input.ttaLevels?.length ? { ttaLevels: input.ttaLevels } : {}),
    ...(input.faithfulness ? { faithfulness: input.faithfulness } : {}),
  };
  return { markdown: toMarkdown(json, input), json };
}

/** Markdown table cell: escape pipes and line breaks so user text cannot break the table. */
function cell(v: unknown): string {
  return String(v).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function num(v: number, digits = 3): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '−Inf';
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(digits);
}

function calibrationMarkdown(k: ModelCardCalibration): string[] {
  const L = ['## Confidence and triage', ''];
  L.push(
    `- Temperature ${num(k.temperature)} (fitted on ${k.voxels.toLocaleString('en-US')} validation voxels): expected calibration error ${num(k.ece.before, 4)} before, ${num(k.ece.after, 4)} after.`,
  );
  const t = k.triage;
  if (t) {
    L.push(
      `- Review flag: a case whose uncertainty score (mean normalised predictive entropy over the prediction and its uncertain rim, from one fold's ${k.members === 1 ? 'single pass' : `${k.members} test-time passes`} at the fitted temperature) is at least ${num(t.threshold, 4)}. ` +
        `On the ${t.cases} validation cases it flagged ${num(100 * t.flaggedFraction, 1)}% and caught ${num(100 * t.capturedFailures, 1)}% of the ${t.failures} with Dice below ${t.failureDice}` +
        (t.auroc !== null ? `; AUROC of the score for those failures ${num(t.auroc)}.` : '.'),
    );
  }
  return L;
}

const METHOD_NAMES: Record<string, string> = {
  gradcam: 'Grad-CAM',
  gradcampp: 'Grad-CAM++',
  attention: 'Attention',
  occlusion: 'Occlusion',
  ig: 'Integrated gradients',
};

function faithfulnessMarkdown(f: ModelCardFaithfulness): string[] {
  const method = METHOD_NAMES[f.method] ?? f.method;
  const r = f.randomisation;
  const d = f.deletion;
  return [
    '## Explanation faithfulness',
    '',
    `${method}${f.layer ? ` of layer \`${cell(f.layer)}\`` : ''} for class ${f.classIndex}${f.className ? ` (${cell(f.className)})` : ''}, ` +
      `targeted at its predicted mask (${f.regionVoxels.toLocaleString('en-US')} voxels), on validation case ${cell(f.case)} of fold ${f.fold} (${cell(f.caseChoice)}):`,
    '',
    `- Randomisation test: Spearman rank correlation with the map of a network with freshly initialised weights ${num(r.spearman)} (absolute values ${num(r.spearmanAbs)}): ` +
      `${r.passes ? 'passes' : '**fails**'} (both must be below 0.5 for the map to depend on the weights).`,
    `- Deletion curve (${d.steps} steps): area under the Dice as the most-attributed voxels are deleted ${num(d.auc)}, against ${num(d.randomAuc)} for a random order (lower is more faithful).`,
    `- Share of the map's positive mass inside the predicted mask: ${num(100 * f.massInRegion, 1)}%.`,
  ];
}

function toMarkdown(c: ModelCardJson, input: ModelCardInput): string {
  const L: string[] = [];
  L.push(`# Model card: ${cell(c.model.name)}${c.model.version ? ` (v${cell(c.model.version)})` : ''}`, '');
  L.push(`> **${RESEARCH_DISCLAIMER}**`, '');
  L.push(`Date: ${c.date}`, '');
  L.push('## Model', '');
  L.push(`- Architecture: ${cell(c.model.architecture)}`);
  if (c.model.architectureType) L.push(`- Type: ${cell(c.model.architectureType)}`);
  if (c.model.parameters !== null) L.push(`- Parameters: ${c.model.parameters.toLocaleString('en-US')}`);
  L.push('', '## Data', '');
  L.push(`- Dataset: ${cell(c.data.dataset)}`);
  L.push(`- Modality: ${cell(c.data.modality)}`);
  L.push(
    `- Cases: ${c.data.cases}` +
      (c.data.trainingCases !== undefined ? ` (training ${c.data.trainingCases}` : '') +
      (c.data.validationCases !== undefined ? `${c.data.trainingCases !== undefined ? ', ' : ' ('}validation ${c.data.validationCases}` : '') +
      (c.data.trainingCases !== undefined || c.data.validationCases !== undefined ? ')' : ''),
  );
  if (c.data.labels)
    L.push(
      `- Labels: ${Object.entries(c.data.labels)
        .map(([k, v]) => `${cell(k)} = ${cell(v)}`)
        .join(', ')}`,
    );
  if (c.data.source) L.push(`- Source: ${cell(c.data.source)}`);
  if (c.plan) {
    L.push('', '## Plan', '', '| Setting | Value |', '|---|---|');
    for (const [k, v] of Object.entries(c.plan)) L.push(`| ${cell(k)} | ${cell(Array.isArray(v) ? v.join(' × ') : v)} |`);
  }
  if (c.training) {
    const t = c.training;
    L.push('', '## Training budget', '');
    if (t.budget) L.push(`- Budget: ${cell(t.budget)}`);
    if (t.epochs !== undefined) L.push(`- Epochs: ${t.epochs}`);
    if (t.iterations !== undefined) L.push(`- Iterations: ${t.iterations}`);
    if (t.wallTimeHours !== undefined) L.push(`- Wall time: ${t.wallTimeHours.toFixed(1)} h`);
    if (t.seed !== undefined) L.push(`- Seed: ${t.seed}`);
    if (t.initialisation) L.push(`- Initialised with: ${cell(t.initialisation)}`);
    if (t.syntheticData) L.push(`- Synthetic training data: ${cell(t.syntheticData)}`);
    if (t.semiSupervised) L.push(`- Semi-supervised: ${cell(t.semiSupervised)}`);
    if (t.hardware)
      L.push(`- Hardware: ${cell(t.hardware.cpuModel)}, ${t.hardware.cores} cores, ${t.hardware.platform}/${t.hardware.arch}, Node ${t.hardware.node}`);
  }
  const level = Math.round((input.bootstrap?.level ?? 0.95) * 100);
  L.push('', '## Validation results', '');
  L.push(
    `Mean over cases with a ${level}% percentile-bootstrap confidence interval (${input.bootstrap?.resamples ?? 2000} resamples). ` +
      'NaN and infinite per-case values are excluded from the statistics and counted in the last column.',
    '',
  );
  L.push(`| Label | Metric | n | Mean [${level}% CI] | Median | SD | Excluded |`, '|---|---|---:|---|---:|---:|---|');
  for (const v of c.validation) {
    L.push(
      `| ${cell(v.label)} | ${cell(v.metric)} | ${v.nFinite}/${v.n} | ${num(v.mean)} [${num(v.ci95[0])}, ${num(v.ci95[1])}] | ${num(v.median)} | ${num(v.std)} | ${cell(v.note.replace(/ excluded from statistics$/, '') || '—')} |`,
    );
  }
  if (c.comparison) L.push('', ...comparisonMarkdown(c.comparison));
  if (c.calibration) L.push('', ...calibrationMarkdown(c.calibration));
  if (c.ttaLevels?.length) L.push('', ...ttaLevelsMarkdown(c.ttaLevels));
  if (c.faithfulness) L.push('', ...faithfulnessMarkdown(c.faithfulness));
  L.push('', '## Intended use', '', c.intendedUse, '', '### Out of scope', '', c.outOfScope);
  L.push('', '## Known failure cases', '');
  if (c.failureCases.length) {
    L.push(`The ${c.failureCases.length} worst validation cases by ${cell(c.failureCases[0]!.metric)}:`, '');
    L.push('| Case | Label | Value |', '|---|---|---:|');
    for (const f of c.failureCases) L.push(`| ${cell(f.case)} | ${cell(f.label)} | ${num(f.value)} |`);
  } else {
    L.push('No rankable per-case values.');
  }
  L.push('', '---', '', `*${RESEARCH_DISCLAIMER}*`, '');
  return L.join('\n');
}

/** Where a model card's two forms go (the model folder module names them: plan/model-folder.ts modelCardPaths). */
export interface ModelCardPaths {
  markdown: string;
  json: string;
}

/** Writes the card's Markdown and JSON forms (atomically: temp file then rename). */
export function writeModelCard(paths: ModelCardPaths, input: ModelCardInput): { markdownPath: string; jsonPath: string; card: ModelCardJson } {
  const { markdown, json } = buildModelCard(input);
  const markdownPath = paths.markdown;
  const jsonPath = paths.json;
  mkdirSync(dirname(markdownPath), { recursive: true });
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileAtomicSync(markdownPath, markdown);
  writeFileAtomicSync(jsonPath, `${JSON.stringify(json, jsonNumberReplacer, 2)}\n`);
  return { markdownPath, jsonPath, card: json };
}

const COMPARISON_HEADING = '## Comparison with other architectures';

function comparisonMarkdown(c: ModelCardComparison): string[] {
  const L = [COMPARISON_HEADING, '', cell(c.context)];
  for (const r of c.results) {
    L.push('', `**${cell(r.metric)}, label ${cell(r.label)}.** ${cell(r.verdict)}`, '');
    L.push(
      `| Model | Mean ${cell(r.metric)} | Paired difference (this − other) | n | p (Holm) | Rank-biserial | Outcome for this model |`,
      '|---|---:|---:|---:|---:|---:|---|',
    );
    L.push(`| **${cell(r.focus)}** | ${num(r.focusMean)} | | | | | |`);
    for (const o of r.opponents) {
      L.push(
        `| ${cell(o.model)} | ${num(o.mean)} | ${num(o.meanDifference)} | ${o.nCases} | ${o.pAdjusted < 0.001 ? '< 0.001' : num(o.pAdjusted)} | ${num(o.rankBiserial)} | ${cell(o.outcome)} |`,
      );
    }
  }
  return L;
}

/**
 * Adds (or replaces) a section of a card already written by writeModelCard:
 * the Markdown section (starting with its `heading`) goes before "Intended
 * use", and `value` under `key` in the JSON form.
 */
export function addSectionToModelCard(paths: ModelCardPaths, heading: string, section: string[], key: string, value: unknown): void {
  const json = JSON.parse(readFileSync(paths.json, 'utf8')) as Record<string, unknown>;
  json[key] = value;
  writeFileAtomicSync(paths.markdown, withSection(readFileSync(paths.markdown, 'utf8'), heading, section, paths.markdown));
  writeFileAtomicSync(paths.json, `${JSON.stringify(json, jsonNumberReplacer, 2)}\n`);
}

/** A card's Markdown with the section starting at `heading` put (or replaced) before "Intended use". */
function withSection(md: string, heading: string, section: string[], path: string): string {
  const start = md.indexOf(`\n${heading}\n`);
  const withoutOld = start < 0 ? md : md.slice(0, start) + md.slice(md.indexOf('\n## ', start + 1));
  const at = withoutOld.indexOf('\n## Intended use');
  if (at < 0) throw new MedsegStatsError('BAD_INPUT', `${path} is not a medseg model card (no Intended use section)`);
  return `${withoutOld.slice(0, at)}\n${section.join('\n')}\n${withoutOld.slice(at)}`;
}

/** A card holding only one section, for a model whose folder has no card (fixtures, hand-made folders). */
export function writeSectionOnlyModelCard(paths: ModelCardPaths, name: string, section: string[], key: string, value: unknown): void {
  const json = { schema: 'medseg.modelcard/1', model: { name }, date: new Date().toISOString().slice(0, 10), disclaimer: RESEARCH_DISCLAIMER, [key]: value };
  const markdown = [`# Model card: ${cell(name)}`, '', `> **${RESEARCH_DISCLAIMER}**`, '', ...section, '', '---', '', `*${RESEARCH_DISCLAIMER}*`, ''].join(
    '\n',
  );
  mkdirSync(dirname(paths.markdown), { recursive: true });
  mkdirSync(dirname(paths.json), { recursive: true });
  writeFileAtomicSync(paths.markdown, markdown);
  writeFileAtomicSync(paths.json, `${JSON.stringify(json, jsonNumberReplacer, 2)}\n`);
}

/**
 * Add (or replace) the comparison section of a card already written by
 * writeModelCard, once the other models have been evaluated (the comparison
 * study trains them one after another).
 */
export function addComparisonToModelCard(paths: ModelCardPaths, comparison: ModelCardComparison): void {
  addSectionToModelCard(paths, COMPARISON_HEADING, comparisonMarkdown(comparison), 'comparison', comparison);
}

/** A compressed model's section: what was done, its size, speed and Dice against the original (deploy/compression-eval.ts measures it). */
export interface ModelCardCompression {
  /** The compressed model file. */
  file: string;
  /** Each step in words (pruning with its fine-tuning, quantization with its calibrator). */
  steps: string[];
  bytes: { original: number; compressed: number };
  /** Median ms of one network pass on a batch of one patch, each model in onnxruntime on this machine. */
  passMs: { patch: number[]; original: number; compressed: number } | null;
  /** Median ms of one validation case (sliding window on the preprocessed grid). */
  caseMs: { original: number; compressed: number } | null;
  hardware?: string;
  /** Dice on the validation cases, or null when no dataset was given to score on. */
  dice: {
    cases: number;
    protocol: string;
    original: { mean: number; worst: number };
    compressed: { mean: number; worst: number };
    delta: { mean: number; worst: number; worstCase: string };
    worstRatio: number;
    gates: { fraction: number; mean: boolean; worstCase: boolean }[];
  } | null;
}

const COMPRESSION_HEADING = '## Compressed model';

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** The compressed model's Markdown section. */
export function compressionMarkdown(c: ModelCardCompression): string[] {
  const L = [COMPRESSION_HEADING, '', `File: ${cell(c.file)}. The sections above describe the original fp32 model; this one the compressed model.`, ''];
  for (const s of c.steps) L.push(`- ${cell(s)}`);
  L.push('', '| | Original fp32 | Compressed | Ratio |', '|---|---:|---:|---:|');
  L.push(`| Size on disk | ${mb(c.bytes.original)} | ${mb(c.bytes.compressed)} | ${num(c.bytes.compressed / c.bytes.original)} |`);
  if (c.passMs)
    L.push(
      `| One network pass [${c.passMs.patch.join(' × ')}] (ms) | ${num(c.passMs.original, 1)} | ${num(c.passMs.compressed, 1)} | ${num(c.passMs.original / c.passMs.compressed, 2)}× faster |`,
    );
  if (c.caseMs)
    L.push(
      `| One validation case (ms) | ${num(c.caseMs.original, 1)} | ${num(c.caseMs.compressed, 1)} | ${num(c.caseMs.original / c.caseMs.compressed, 2)}× faster |`,
    );
  if (c.dice) {
    const d = c.dice;
    L.push(`| Dice, mean over cases | ${num(d.original.mean, 4)} | ${num(d.compressed.mean, 4)} | ${num(d.compressed.mean / d.original.mean, 4)} |`);
    L.push(`| Dice, worst case | ${num(d.original.worst, 4)} | ${num(d.compressed.worst, 4)} | |`);
    L.push(
      '',
      `ΔDice (compressed − original) on ${d.cases} validation cases: mean ${num(d.delta.mean, 4)}, worst case ${num(d.delta.worst, 4)} (${cell(d.delta.worstCase)}); smallest per-case ratio ${num(d.worstRatio, 4)}. Measured on ${cell(d.protocol)}.`,
    );
    L.push(
      '',
      "Quality gate (as MLPerf's 3D U-Net: the compressed model keeps this share of the fp32 Dice):",
      '',
      '| Share kept | Mean | Worst case |',
      '|---|---|---|',
    );
    for (const g of d.gates) L.push(`| ≥ ${num(100 * g.fraction, 1)} % | ${g.mean ? 'pass' : 'FAIL'} | ${g.worstCase ? 'pass' : 'FAIL'} |`);
  } else {
    L.push('', 'Dice not measured (no dataset given to score the validation cases on).');
  }
  if (c.hardware) L.push('', `Timed on ${cell(c.hardware)}.`);
  return L;
}

/**
 * Writes a compressed model's card to `paths`: the original model's card
 * (`source`, when it exists) with the compression section before Intended
 * use and a `compression` entry in the JSON, or, for a model folder without
 * a card, the section alone with the disclaimer. The original card stays as
 * it is.
 */
export function writeCompressedModelCard(
  paths: ModelCardPaths,
  source: ModelCardPaths | null,
  c: ModelCardCompression,
): { markdownPath: string; jsonPath: string } {
  const section = compressionMarkdown(c);
  if (!(source && existsSync(source.json) && existsSync(source.markdown))) {
    writeSectionOnlyModelCard(paths, c.file, section, 'compression', c);
    return { markdownPath: paths.markdown, jsonPath: paths.json };
  }
  const json = { ...(JSON.parse(readFileSync(source.json, 'utf8')) as ModelCardJson), compression: c };
  const markdown = withSection(readFileSync(source.markdown, 'utf8'), COMPRESSION_HEADING, section, source.markdown);
  mkdirSync(dirname(paths.markdown), { recursive: true });
  mkdirSync(dirname(paths.json), { recursive: true });
  writeFileAtomicSync(paths.markdown, markdown);
  writeFileAtomicSync(paths.json, `${JSON.stringify(json, jsonNumberReplacer, 2)}\n`);
  return { markdownPath: paths.markdown, jsonPath: paths.json };
}
