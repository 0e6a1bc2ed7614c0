/** The standard normal tail, accurate far out, for the p-values of the rank tests. */

/**
 * Complementary error function to near double precision: a power series for
 * small |x| and a continued fraction (modified Lentz) in the tail, so normal
 * tail p-values stay accurate where 1 - erf(x) would cancel.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * erfcContinuedFraction(x));
}

/**
 * For x >= 2.5, f(x) in erfc(x) = exp(-x^2) / (sqrt(pi) f(x)): the continued
 * fraction x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))) by modified Lentz.
 * Apart from exp(-x^2) it stays finite far into the tail, where erfc underflows.
 */
export function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let i = 1; i < 500; i++) {
    const a = i / 2;
    D = x + a * D;
    D = Math.abs(D) < tiny ? tiny : D;
    C = x + a / C;
    C = Math.abs(C) < tiny ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return f;
}

/** Upper tail of the standard normal, P(Z > z). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}
