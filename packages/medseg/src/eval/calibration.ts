/**
 * Calibration of voxel-wise class probabilities: expected calibration error
 * with its reliability diagram, and temperature scaling (Guo et al. 2017):
 * one scalar T > 0 dividing every logit, fitted by minimising the negative
 * log-likelihood on validation voxels. T leaves the argmax, so the masks and
 * their Dice, unchanged and only makes the probabilities honest.
 *
 * Logits are given as [N, K] rows (x-fastest per voxel: voxel i's class k at
 * i * K + k), labels as N class indices.
 */

export interface ReliabilityBin {
  /** Confidence interval [lo, hi) of the bin (the last bin includes 1). */
  lo: number;
  hi: number;
  count: number;
  /** Mean confidence (max probability) of the bin's voxels. */
  confidence: number;
  /** Fraction of the bin's voxels whose argmax is the true class. */
  accuracy: number;
}

export interface CalibrationError {
  /** Σ_b (n_b / N) |accuracy_b - confidence_b| over equal-width confidence bins. */
  ece: number;
  /** max_b |accuracy_b - confidence_b| over non-empty bins. */
  mce: number;
  bins: ReliabilityBin[];
}

function checkRows(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number): number {
  if (!(Number.isInteger(K) && K >= 2)) throw new Error(`calibration needs at least two classes, got ${K}`);
  const n = labels.length;
  if (logits.length !== n * K) throw new Error(`logits have ${logits.length} values, expected ${n} voxels x ${K} classes`);
  if (n === 0) throw new Error('calibration needs at least one voxel');
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < K)) throw new Error(`label ${y} at voxel ${i} is not a class index below ${K}`);
  }
  return n;
}

/** Softmax of row i of logits / T into `out`; returns log Σ exp(z / T) - max for the NLL. */
function softmaxRow(logits: ArrayLike<number>, i: number, K: number, T: number, out: Float64Array): number {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, logits[i * K + k]! / T);
  let s = 0;
  for (let k = 0; k < K; k++) {
    const e = Math.exp(logits[i * K + k]! / T - m);
    out[k] = e;
    s += e;
  }
  for (let k = 0; k < K; k++) out[k]! /= s;
  return m + Math.log(s);
}

/** ECE and MCE of softmax(logits / temperature) with `bins` equal-width confidence bins (default 15, as Guo et al.). */
export function calibrationError(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  K: number,
  o: { bins?: number; temperature?: number } = {},
): CalibrationError {
  const n = checkRows(logits, labels, K);
  const B = o.bins ?? 15;
  const T = o.temperature ?? 1;
  const count = new Float64Array(B);
  const conf = new Float64Array(B);
  const acc = new Float64Array(B);
  const p = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    softmaxRow(logits, i, K, T, p);
    let best = 0;
    for (let k = 1; k < K; k++) if (p[k]! > p[best]!) best = k;
    const c = p[best]!;
    const b = Math.min(B - 1, Math.floor(c * B));
    count[b]!++;
    conf[b]! += c;
    if (best === labels[i]) acc[b]!++;
  }
  const bins: ReliabilityBin[] = [];
  let ece = 0;
  let mce = 0;
  for (let b = 0; b < B; b++) {
    const nb = count[b]!;
    const bin = { lo: b / B, hi: (b + 1) / B, count: nb, confidence: nb ? conf[b]! / nb : 0, accuracy: nb ? acc[b]! / nb : 0 };
    bins.push(bin);
    if (nb) {
      const gap = Math.abs(bin.accuracy - bin.confidence);
      ece += (nb / n) * gap;
      mce = Math.max(mce, gap);
    }
  }
  return { ece, mce, bins };
}

/** Mean negative log-likelihood of the labels under softmax(logits / T). */
export function negativeLogLikelihood(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number, T = 1): number {
  const n = checkRows(logits, labels, K);
  const p = new Float64Array(K);
  let nll = 0;
  for (let i = 0; i < n; i++) {
    const lse = softmaxRow(logits, i, K, T, p);
    nll += lse - logits[i * K + labels[i]!]! / T;
  }
  return nll / n;
}

export interface TemperatureFit {
  temperature: number;
  nllBefore: number;
  nllAfter: number;
}

/**
 * The temperature minimising the NLL, searched over log T in [log 0.05,
 * log 20] by golden-section search (the NLL is convex in 1/T, so unimodal
 * in log T) to a relative precision of about 1e-6.
 */
export function fitTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number): TemperatureFit {
  checkRows(logits, labels, K);
  const f = (logT: number) => negativeLogLikelihood(logits, labels, K, Math.exp(logT));
  const g = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(0.05);
  let b = Math.log(20);
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-6) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  const temperature = Math.exp((a + b) / 2);
  return { temperature, nllBefore: f(0), nllAfter: f(Math.log(temperature)) };
}
