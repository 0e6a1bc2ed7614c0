/** Colours of the mask's labels: a fixed, distinguishable palette; label 0 (background) is transparent. */

export type Rgb = [number, number, number];

const PALETTE: Rgb[] = [
  [230, 25, 75],
  [60, 180, 75],
  [0, 130, 200],
  [255, 225, 25],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
];

export function labelColor(label: number): Rgb {
  return label === 0 ? [0, 0, 0] : PALETTE[(label - 1) % PALETTE.length]!;
}

/** The colour table NiiVue's drawing layer takes: one entry per label, background fully transparent. */
export interface LabelColormap {
  R: number[];
  G: number[];
  B: number[];
  A: number[];
  I: number[];
  labels: string[];
}

export function labelColormap(labels: Record<number, string>): LabelColormap {
  const ids = Object.keys(labels)
    .map(Number)
    .sort((a, b) => a - b);
  const max = Math.max(0, ...ids);
  const cm: LabelColormap = { R: [], G: [], B: [], A: [], I: [], labels: [] };
  for (let k = 0; k <= max; k++) {
    const [r, g, b] = labelColor(k);
    cm.R.push(r);
    cm.G.push(g);
    cm.B.push(b);
    cm.A.push(k === 0 ? 0 : 255);
    cm.I.push(k);
    cm.labels.push(labels[k] ?? String(k));
  }
  return cm;
}

export function cssColor(label: number): string {
  const [r, g, b] = labelColor(label);
  return `rgb(${r} ${g} ${b})`;
}
