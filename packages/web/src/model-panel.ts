/**
 * The model beside the image: its card (what a browser model's metadata or
 * the service's model card says) and its labels (the legend with each
 * label's colour, and the brush's label choice).
 */
import type { OnnxModelInfo } from '@medseg/medseg/deploy/model-info';
import type { ServiceModel } from './service-client.ts';
import { cssColor } from './label-colors.ts';

export type CardRows = [string, string][];

/** The card of an exported model opened in the page. */
export function onnxCardRows(info: OnnxModelInfo, fileName: string): CardRows {
  return [
    ['File', fileName],
    ['Dataset', info.dataset],
    ['Network', `${info.architecture} (${info.dims}), fold ${info.fold}, ${info.weights}`],
    ['Channels', info.channels.join(', ')],
    ['Spacing', `${info.targetSpacing.join(' × ')} mm`],
    ['Patch', `${info.patchSize.join(' × ')}, step ${info.inference.stepFraction}`],
    ['TTA', info.inference.mirrorAxes.length ? `mirror axes ${info.inference.mirrorAxes.join(', ')}` : 'none'],
    ...calibrationRows(info),
    ['medseg', info.medsegVersion],
  ];
}

/** The model's temperature and review rule, when it was calibrated. */
function calibrationRows(info: OnnxModelInfo): CardRows {
  const c = info.calibration;
  if (!c) return [['Calibration', 'none (probabilities as the network gives them; no review flag)']];
  const t = c.triage;
  return [
    ['Temperature', c.temperature.toFixed(3)],
    [
      'Review flag',
      t
        ? `uncertainty ≥ ${t.threshold.toFixed(4)} (catches Dice < ${t.failureDice} on validation${t.auroc === null ? '' : `, AUROC ${t.auroc.toFixed(2)}`})`
        : 'none (too few validation failures to set one)',
    ],
  ];
}

/** The card of a model on the service, with its validation Dice and intended use from its model card. */
export function serviceCardRows(m: ServiceModel): CardRows {
  const card = m.card as { validation?: { label: string; metric: string; mean: number }[]; intendedUse?: string } | null;
  const rows: CardRows = [
    ['Model', `${m.id} (version ${m.version}, on the service)`],
    ['Dataset', m.dataset],
    ['Network', `${m.architecture} (${m.dims})`],
    ['Channels', m.channels.join(', ')],
  ];
  const dice = (card?.validation ?? []).filter((r) => r.metric === 'dice');
  if (dice.length) rows.push(['Validation Dice', dice.map((r) => `${m.labels[r.label] ?? r.label} ${r.mean.toFixed(3)}`).join(', ')]);
  if (card?.intendedUse) rows.push(['Intended use', card.intendedUse]);
  return rows;
}

/** Fills the card, the legend and the brush's label list. */
export function showModelPanel(
  ui: { modelCard: HTMLDListElement; legend: HTMLUListElement; brushLabel: HTMLSelectElement },
  rows: CardRows,
  labelNames: Record<string, string>,
): void {
  ui.modelCard.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  const labels = Object.entries(labelNames)
    .map(([k, v]) => [Number(k), v] as const)
    .filter(([k]) => k !== 0);
  ui.legend.replaceChildren(
    ...labels.map(([k, v]) => {
      const li = document.createElement('li');
      li.style.setProperty('--swatch', cssColor(k));
      li.textContent = `${k} ${v}`;
      return li;
    }),
  );
  ui.brushLabel.replaceChildren(...labels.map(([k, v]) => new Option(`${k} ${v}`, String(k))));
}
