import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../../util/random.ts';
import { MedsegStatsError } from './errors.ts';
import { comparePaired, holmAdjust } from './paired.ts';
import { metricDirection, type MetricRow } from './rows.ts';
import { subgroupBreakdown } from './subgroups.ts';
import { aggregate, bootstrapMeanCI, summarize } from './summary.ts';
import { summarizeInferenceTimes } from './timing.ts';
import { erfc } from './normal.ts';
import { wilcoxonSignedRank, type WilcoxonOptions } from './wilcoxon.ts';
import { runPythonJson } from '../../testing/python.ts';

const REF = fileURLToPath(new URL('./statistics_ref.py', import.meta.url));

function pyRef(req: unknown): any {
  return runPythonJson([REF], req);
}

function normal(rand: () => number): number {
  // Box–Muller
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1e-300, Math.abs(expected)) + 1e-15;
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected}`);
}

/** Dice-like paired differences of two models on the same cases. */
function diceDiffs(n: number, seed: number, shift: number, round?: number): number[] {
  const rand = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const hard = rand() * 0.3;
    const a = Math.min(1, Math.max(0, 0.88 - hard + 0.04 * normal(rand)));
    const b = Math.min(1, Math.max(0, 0.88 - shift - hard + 0.04 * normal(rand)));
    let d = a - b;
    if (round !== undefined) d = Math.round(d * 10 ** round) / 10 ** round;
    out.push(d);
  }
  return out;
}

test('Wilcoxon signed-rank matches scipy.stats.wilcoxon (exact, approx, ties, zeros, one-sided)', () => {
  const cases: { d: number[]; opts: WilcoxonOptions; scipy: { method: string; correction: boolean; alternative: string } }[] = [];
  const add = (d: number[], opts: WilcoxonOptions, method: string, correction: boolean) =>
    cases.push({ d, opts, scipy: { method, correction, alternative: opts.alternative ?? 'two-sided' } });
  // Continuous, untied, no zeros: our 'auto' uses the exact distribution, as scipy does for n <= 50.
  add(diceDiffs(30, 1, 0.02), {}, 'auto', false);
  add(diceDiffs(12, 2, 0.03), {}, 'auto', false);
  add(diceDiffs(20, 3, 0.0), { alternative: 'greater' }, 'auto', false);
  add(diceDiffs(25, 4, 0.05), { alternative: 'less' }, 'auto', false);
  // Rounded Dice differences: ties and exact zeros -> normal approximation with tie correction.
  const tied = diceDiffs(30, 5, 0.015, 2);
  assert.ok(
    tied.some((x) => x === 0),
    'fixture must contain zero differences',
  );
  add(tied, {}, 'approx', true);
  add(tied, { correction: false }, 'approx', false);
  add(tied, { alternative: 'greater' }, 'approx', true);
  const tiedNoZero = diceDiffs(40, 6, 0.05, 2).map((x) => (x === 0 ? 0.01 : x));
  add(tiedNoZero, {}, 'approx', true);
  // Large n: normal approximation, with and without continuity correction.
  add(diceDiffs(80, 7, 0.01), {}, 'approx', true);
  add(diceDiffs(80, 7, 0.01), { correction: false }, 'auto', false);
  add(diceDiffs(80, 8, 0.01), { method: 'approx', alternative: 'less' }, 'approx', true);
  // Small with ties.
  add([0.1, -0.05, 0.1, 0.2, 0, -0.1, 0.3, 0.1], {}, 'approx', true);

  const ref = pyRef({ wilcoxon: cases.map((c) => ({ d: c.d, ...c.scipy })) });
  cases.forEach((c, i) => {
    const ours = wilcoxonSignedRank(c.d, c.opts);
    const want = ref.wilcoxon[i];
    close(ours.statistic, want.statistic, 1e-12, `case ${i} statistic`);
    close(ours.pValue, want.p, 1e-9, `case ${i} p-value (${ours.method})`);
    close(ours.rankBiserial, want.rbc, 1e-12, `case ${i} rank-biserial`);
  });
  assert.equal(wilcoxonSignedRank(cases[0]!.d).method, 'exact');
  assert.equal(wilcoxonSignedRank(tied).method, 'approx');
  assert.ok(wilcoxonSignedRank(tied).nZero > 0);
});

test('Wilcoxon edge cases: all zeros, empty, non-finite input', () => {
  const z = wilcoxonSignedRank([0, 0, 0]);
  assert.ok(Number.isNaN(z.pValue));
  assert.match(z.warning, /zero/);
  assert.ok(Number.isNaN(wilcoxonSignedRank([]).pValue));
  assert.throws(() => wilcoxonSignedRank([1, Number.NaN]), MedsegStatsError);
  // Fully one-sided small sample: exact two-sided p = 2 / 2^n.
  close(wilcoxonSignedRank([1, 2, 3, 4, 5]).pValue, 2 / 32, 1e-12, 'n=5 all positive');
});

test('erfc matches scipy.special.erfc across the range', () => {
  const xs = [-3, -1.2, -0.3, 0, 1e-4, 0.5, 1, 1.7, 2.4, 2.6, 3.5, 5, 8, 12];
  const ref = pyRef({ erfc: xs });
  xs.forEach((x, i) => close(erfc(x), ref.erfc[i], 1e-12, `erfc(${x})`));
});

test('descriptive statistics match numpy on finite values; NaN/Inf counted, not averaged', () => {
  const rand = seededRandom(42);
  const samples: number[][] = [];
  for (const n of [5, 30, 101]) samples.push(Array.from({ length: n }, () => 0.8 + 0.1 * normal(rand)));
  const withBad = [...samples[1]!, Number.NaN, Number.POSITIVE_INFINITY, Number.NaN, Number.NEGATIVE_INFINITY];
  samples.push(withBad);
  const ref = pyRef({ describe: samples });
  samples.forEach((s, i) => {
    const ours = summarize(s);
    const want = ref.describe[i];
    for (const k of ['mean', 'median', 'std', 'min', 'max', 'q1', 'q3'] as const) close(ours[k], want[k], 1e-12, `sample ${i} ${k}`);
  });
  const bad = summarize([...withBad, undefined]);
  assert.equal(bad.nNaN, 2);
  assert.equal(bad.nPosInf, 1);
  assert.equal(bad.nNegInf, 1);
  assert.equal(bad.nMissing, 1);
  assert.equal(bad.nFinite, 30);
  assert.match(bad.note, /2 NaN, 1 \+Inf, 1 −Inf, 1 missing excluded/);
  const empty = summarize([Number.NaN, Number.NaN]);
  assert.ok(Number.isNaN(empty.mean) && Number.isNaN(empty.ci.lower));
  // Inference-time percentiles use the same (numpy linear) definition.
  const times = Array.from({ length: 37 }, () => 50 + 20 * Math.abs(normal(rand)));
  const t = summarizeInferenceTimes(times, { threads: 2 });
  const tr = pyRef({ describe: [times] }).describe[0];
  close(t.medianMs, tr.median, 1e-12, 'median time');
  close(t.p95Ms, tr.p95, 1e-12, 'p95 time');
  assert.equal(t.threads, 2);
  assert.ok(t.hardware.cores >= 1 && t.hardware.cpuModel.length > 0);
});

test('bootstrap CI is deterministic under a seed and agrees with the normal-theory CI', () => {
  const rand = seededRandom(7);
  const big = Array.from({ length: 3000 }, () => 0.75 + 0.12 * normal(rand));
  const a = bootstrapMeanCI(big, { seed: 99 });
  const b = bootstrapMeanCI(big, { seed: 99 });
  const c = bootstrapMeanCI(big, { seed: 100 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const s = summarize(big);
  const half = (1.959964 * s.std) / Math.sqrt(big.length);
  const width = a.upper - a.lower;
  assert.ok(Math.abs(width - 2 * half) / (2 * half) < 0.1, `bootstrap width ${width} vs analytic ${2 * half}`);
  assert.ok(Math.abs((a.upper + a.lower) / 2 - s.mean) < 0.2 * half, 'interval centred on the mean');

  // Coverage of the true mean over many seeded datasets from a known distribution.
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const r = seededRandom(1000 + t);
    const x = Array.from({ length: 40 }, () => 0.8 + 0.1 * normal(r));
    const ci = bootstrapMeanCI(x, { seed: t, resamples: 1000 });
    if (ci.lower <= 0.8 && 0.8 <= ci.upper) covered++;
  }
  assert.ok(covered / trials > 0.88 && covered / trials < 0.99, `coverage ${covered / trials}`);
  assert.throws(() => bootstrapMeanCI([1, 2], { resamples: 0 }), MedsegStatsError);
});

function rowsFixture(): MetricRow[] {
  const rand = seededRandom(3);
  const rows: MetricRow[] = [];
  for (let i = 0; i < 30; i++) {
    const hard = rand() * 0.2;
    for (const [model, base] of [
      ['A', 0.9],
      ['B', 0.86],
    ] as const) {
      const dice = i === 4 ? Number.NaN : Math.max(0, base - hard + 0.03 * normal(rand));
      rows.push({ model, case: `c${i}`, label: 1, dice, hd95: i === 7 && model === 'B' ? Number.POSITIVE_INFINITY : 2 + 10 * hard });
    }
  }
  return rows;
}

test('aggregate and paired comparison work on metric rows, keyed on case', () => {
  const rows = rowsFixture();
  const agg = aggregate(rows, { bootstrap: { resamples: 500 } });
  assert.equal(agg.length, 4);
  const aDice = agg.find((r) => r.model === 'A' && r.metric === 'dice')!;
  assert.equal(aDice.nNaN, 1);
  assert.equal(aDice.nFinite, 29);
  const bHd = agg.find((r) => r.model === 'B' && r.metric === 'hd95')!;
  assert.equal(bHd.nPosInf, 1);
  assert.ok(Number.isFinite(bHd.mean));

  // Shuffled row order must not change the pairing.
  const shuffled = [...rows].reverse();
  const cmp = comparePaired(shuffled, 'A', 'B', 1, 'dice');
  assert.equal(cmp.nCases, 30);
  assert.equal(cmp.nExcluded, 1);
  const a = rows.filter((r) => r.model === 'A');
  const b = rows.filter((r) => r.model === 'B');
  const d = a.map((r, i) => (r.dice as number) - (b[i]!.dice as number)).filter(Number.isFinite);
  const ref = pyRef({ wilcoxon: [{ d, method: 'auto', correction: false, alternative: 'two-sided' }], describe: [d] });
  close(cmp.wilcoxon.pValue, ref.wilcoxon[0].p, 1e-9, 'paired p');
  close(cmp.medianDifference, ref.describe[0].median, 1e-12, 'median difference');
  assert.ok(cmp.wilcoxon.rankBiserial > 0, 'A is better, effect positive');
  assert.throws(() => comparePaired(rows, 'A', 'missing', 1, 'dice'), MedsegStatsError);
  assert.throws(() => comparePaired([...rows, rows[0]!], 'A', 'B', 1, 'dice'), /duplicate/);
});

test('subgroup breakdown and gap respect metric direction', () => {
  const rows = rowsFixture();
  const sub: Record<string, Record<string, string>> = {};
  for (let i = 0; i < 30; i++) if (i !== 29) sub[`c${i}`] = { site: i % 3 === 0 ? 'Site C' : i % 2 ? 'Site A' : 'Site B' };
  const br = subgroupBreakdown(rows, sub, 'site', { bootstrap: { resamples: 200 } });
  assert.deepEqual(br.groups, ['Site A', 'Site B', 'Site C', '(not recorded)']);
  assert.equal(br.nCasesMissing, 1);
  for (const g of br.gaps) {
    const groupRows = br.rows.filter((r) => r.model === g.model && r.metric === g.metric && r.group !== '(not recorded)');
    const means = groupRows.map((r) => r.mean);
    const best = g.direction === 'higher' ? Math.max(...means) : Math.min(...means);
    const worst = g.direction === 'higher' ? Math.min(...means) : Math.max(...means);
    close(g.best.mean, best, 1e-12, 'best');
    close(g.worst.mean, worst, 1e-12, 'worst');
    close(g.gap, Math.abs(best - worst), 1e-12, 'gap');
    // independent recomputation of a group mean
    const siteA = rows
      .filter((r) => r.model === g.model && sub[r.case]?.site === 'Site A')
      .map((r) => r[g.metric] as number)
      .filter(Number.isFinite);
    close(groupRows.find((r) => r.group === 'Site A')!.mean, siteA.reduce((x, y) => x + y, 0) / siteA.length, 1e-12, 'site A mean');
  }
  assert.equal(metricDirection('hd95'), 'lower');
  assert.equal(metricDirection('dice'), 'higher');
  assert.equal(metricDirection('surface_distance_mm'), 'lower');
  assert.equal(metricDirection('nsd_2mm'), 'higher');
});

test('Holm adjustment matches the step-down definition', () => {
  // Worked by hand: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1, then the running maximum.
  const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  [0.03, 0.06, 0.06, 0.02].forEach((v, i) => close(adj[i]!, v, 1e-12, `holm ${i}`));
  assert.ok(Number.isNaN(holmAdjust([Number.NaN, 0.2])[0]!));
});
