/**
 * Privacy accounting for DP-SGD: the Rényi differential privacy (RDP) of the
 * sampled Gaussian mechanism (each step samples every example with
 * probability q and adds Gaussian noise of standard deviation sigma times the
 * clipping norm), composed over steps and converted to (epsilon, delta).
 *
 * RDP of one step at order alpha is log(A_alpha) / (alpha - 1), with A_alpha
 * from Mironov, Talwar and Zhang, "Rényi Differential Privacy of the Sampled
 * Gaussian Mechanism" (2019), Section 3.3: a finite binomial sum for integer
 * alpha, and for fractional alpha the two series with erfc terms, summed
 * until their terms fall below e^-30. RDP composes additively over steps.
 * The conversion to (epsilon, delta) is the tighter one of Balle et al.
 * (2020), minimised over the orders:
 *   epsilon = rdp - (log delta + log alpha) / (alpha - 1) + log((alpha - 1) / alpha).
 * The default orders are 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63, the grid
 * the common DP libraries use, so that the epsilons compare.
 */
import { erfcContinuedFraction } from '../eval/statistics/normal.ts';

/** 1.1 .. 10.9 in steps of 0.1, then 12 .. 63. */
export const DEFAULT_ORDERS: readonly number[] = [...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10), ...Array.from({ length: 52 }, (_, x) => 12 + x)];

export class PrivacyAccountingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivacyAccountingError';
  }
}

/** log(e^a + e^b) without overflow. */
function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^a - e^b) for a >= b. */
function logSub(a: number, b: number): number {
  if (a < b) throw new PrivacyAccountingError('RDP series: a partial sum went negative');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  return Math.log(Math.expm1(a - b)) + b;
}

/** erf(x) for |x| < 2.5 by its everywhere-positive series 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (1*3*...*(2n+1)). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/** log(erfc(x)) for any real x, accurate far into both tails (erfc(40) is about 1e-697). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2.5) return Math.log1p(-erfSeries(x));
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(erfcContinuedFraction(x));
}

/** log A_alpha for integer alpha: the binomial sum over i of C(alpha, i) q^i (1-q)^(alpha-i) e^((i^2 - i) / (2 sigma^2)). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_alpha for fractional alpha: the two erfc series of Mironov et al. (2019), Section 3.3. */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  let logAbsBinom = 0; // log |C(alpha, 0)|
  let sign = 1;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const f = (alpha - i + 1) / i;
      if (f < 0) sign = -sign;
      logAbsBinom += Math.log(Math.abs(f));
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logAbsBinom + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    if (i > 100_000) throw new PrivacyAccountingError(`RDP series at order ${alpha} did not converge (q ${q}, sigma ${sigma})`);
  }
  return logAdd(logA0, logA1);
}

function checkMechanism(q: number, sigma: number): void {
  if (!(q >= 0 && q <= 1)) throw new PrivacyAccountingError(`the sampling rate must lie in [0, 1], not ${q}`);
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new PrivacyAccountingError(`the noise multiplier must be a finite number >= 0, not ${sigma}`);
}

/** RDP at each order of `steps` compositions of the sampled Gaussian mechanism. */
export function sampledGaussianRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkMechanism(q, sigma);
  if (!(Number.isInteger(steps) && steps >= 0)) throw new PrivacyAccountingError(`steps must be a whole number >= 0, not ${steps}`);
  return orders.map((alpha) => {
    if (!(alpha > 1)) throw new PrivacyAccountingError(`RDP orders must be above 1, not ${alpha}`);
    if (q === 0) return 0;
    if (sigma === 0) return Infinity;
    // Without subsampling it is the Gaussian mechanism's alpha / (2 sigma^2).
    if (q === 1) return (steps * alpha) / (2 * sigma * sigma);
    const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
    return (steps * logA) / (alpha - 1);
  });
}

export interface PrivacySpent {
  epsilon: number;
  delta: number;
  /** The order that gave the smallest epsilon. */
  order: number;
}

/** The smallest epsilon over the orders for `delta`, from RDP values at those orders. */
export function epsilonFromRdp(rdp: readonly number[], delta: number, orders: readonly number[] = DEFAULT_ORDERS): PrivacySpent {
  if (rdp.length !== orders.length) throw new PrivacyAccountingError(`${rdp.length} RDP values for ${orders.length} orders`);
  if (!(delta > 0 && delta < 1)) throw new PrivacyAccountingError(`delta must lie in (0, 1), not ${delta}`);
  let best: PrivacySpent = { epsilon: Infinity, delta, order: orders[0]! };
  orders.forEach((a, k) => {
    const eps = rdp[k]! - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (Number.isFinite(eps) && eps < best.epsilon) best = { epsilon: eps, delta, order: a };
  });
  return best;
}

/** Accumulates DP-SGD steps (which may change rate or noise) and reports epsilon for a delta. */
export class RdpAccountant {
  private readonly rdp: number[];
  private stepsTaken = 0;

  constructor(private readonly orders: readonly number[] = DEFAULT_ORDERS) {
    this.rdp = orders.map(() => 0);
  }

  /** Records `steps` steps at sampling rate q with noise multiplier sigma. */
  step(q: number, sigma: number, steps = 1): void {
    const r = sampledGaussianRdp(q, sigma, steps, this.orders);
    r.forEach((v, k) => (this.rdp[k]! += v));
    this.stepsTaken += steps;
  }

  get steps(): number {
    return this.stepsTaken;
  }

  spent(delta: number): PrivacySpent {
    return epsilonFromRdp(this.rdp, delta, this.orders);
  }
}

/**
 * The smallest noise multiplier (to `tolerance`) whose `steps` steps at rate
 * q spend at most `epsilon` for `delta`: bisection on sigma, epsilon falling
 * as sigma grows.
 */
export function noiseMultiplierFor(epsilon: number, delta: number, q: number, steps: number, tolerance = 1e-3): number {
  if (!(epsilon > 0)) throw new PrivacyAccountingError(`the target epsilon must be > 0, not ${epsilon}`);
  const eps = (sigma: number) => epsilonFromRdp(sampledGaussianRdp(q, sigma, steps), delta).epsilon;
  let hi = 1;
  while (eps(hi) > epsilon) {
    hi *= 2;
    if (hi > 1e6) throw new PrivacyAccountingError(`no noise multiplier up to 1e6 reaches epsilon ${epsilon}`);
  }
  let lo = 0;
  while (hi - lo > tolerance) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
