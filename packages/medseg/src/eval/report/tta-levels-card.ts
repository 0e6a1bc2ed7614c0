/** The model card's test-time augmentation section: each level's cost and Dice on the same validation cases. */

export interface TtaLevelRow {
  /** The `medseg predict --tta` level (infer/tta-levels.ts), cheapest first. */
  level: string;
  /** Network passes per sliding-window tile. */
  passes: number;
  /** Median seconds of the sliding window per case (preprocessed grid, no reading or writing). */
  secondsPerCase: number;
  /** Mean foreground Dice over the cases. */
  meanDice: number;
  cases: number;
}

const dice = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');

export function ttaLevelsMarkdown(rows: readonly TtaLevelRow[]): string[] {
  if (rows.length === 0) return [];
  const full = rows.find((r) => r.level === 'full') ?? rows[rows.length - 1]!;
  return [
    '## Test-time augmentation',
    '',
    `Chosen with \`medseg predict --tta ${rows.map((r) => r.level).join('|')}\` (default full). Measured on ${full.cases} validation case${full.cases === 1 ? '' : 's'} of the first fold, on the training grid, the network passes only:`,
    '',
    '| level | passes per tile | seconds per case | mean Dice | Dice vs full |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.level} | ${r.passes} | ${r.secondsPerCase.toFixed(3)} | ${dice(r.meanDice)} | ${Number.isFinite(r.meanDice - full.meanDice) ? (r.meanDice - full.meanDice >= 0 ? '+' : '') + (r.meanDice - full.meanDice).toFixed(4) : 'n/a'} |`,
    ),
  ];
}
