/**
 * Window/level presets: CT windows in Hounsfield units (width / level, as a
 * radiologist names them) and MR ranges from the image's own intensities.
 */

export interface IntensityStats {
  /** NiiVue's robust range (2nd to 98th percentile of the nonzero voxels). */
  robustMin: number;
  robustMax: number;
  globalMin: number;
  globalMax: number;
}

export interface WindowPreset {
  id: string;
  label: string;
  range(s: IntensityStats): [min: number, max: number];
}

/** The display range of a window of `width` centred on `level`. */
export function windowRange(width: number, level: number): [number, number] {
  return [level - width / 2, level + width / 2];
}

const ct = (id: string, label: string, width: number, level: number): WindowPreset => ({
  id,
  label: `CT ${label} (W ${width} / L ${level})`,
  range: () => windowRange(width, level),
});

export const WINDOW_PRESETS: WindowPreset[] = [
  { id: 'mr-robust', label: 'MR auto (2–98 % range)', range: (s) => [s.robustMin, s.robustMax] },
  { id: 'full', label: 'Full range', range: (s) => [s.globalMin, s.globalMax] },
  ct('ct-soft', 'soft tissue', 400, 40),
  ct('ct-brain', 'brain', 80, 40),
  ct('ct-lung', 'lung', 1500, -600),
  ct('ct-bone', 'bone', 1800, 400),
];

export function presetById(id: string): WindowPreset {
  const p = WINDOW_PRESETS.find((w) => w.id === id);
  if (!p) throw new Error(`no window preset '${id}'`);
  return p;
}
