/**
 * The per-case review flag beside the image: the case's uncertainty score
 * against the model's threshold, in words, and on #case-flag's data-flag
 * ('flagged', 'clear', 'none') for styling and tests.
 */
export type FlagState = 'flagged' | 'clear' | 'none';

/** A case's triage score against its model's rule, from the page's own run or from the service. */
export interface CaseFlag {
  score: number;
  members: number;
  flagged: boolean | null;
  threshold: number | null;
  note?: string;
}

/** What the flag line says about a case, and its state. */
export function describeFlag(u: CaseFlag, failureDice?: number): { state: FlagState; text: string } {
  const score = u.score.toFixed(4);
  const members = `${u.members} pass${u.members > 1 ? 'es' : ''}`;
  if (u.flagged === null || u.threshold === null) {
    return { state: 'none', text: `Uncertainty ${score} (${members}); no review flag: ${u.note ?? 'the model has no review threshold'}` };
  }
  const bar = failureDice === undefined ? '' : `, set on validation cases to catch Dice < ${failureDice}`;
  return u.flagged
    ? { state: 'flagged', text: `Review this case: uncertainty ${score} ≥ the model's threshold ${u.threshold.toFixed(4)} (${members}${bar})` }
    : { state: 'clear', text: `Not flagged: uncertainty ${score} < the model's threshold ${u.threshold.toFixed(4)} (${members}${bar})` };
}

export function showFlag(el: HTMLElement, flag: { state: FlagState; text: string }): void {
  el.dataset.flag = flag.state;
  el.textContent = flag.text;
}
