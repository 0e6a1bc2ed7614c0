/** Small dense matrices of registration geometry: 3x3 and affine 4x4, row-major number arrays. */

export type Mat4 = number[];

export function matmul4(a: readonly number[], b: readonly number[]): Mat4 {
  const out = new Array<number>(16).fill(0);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 4; k++) out[i * 4 + j]! += a[i * 4 + k]! * b[k * 4 + j]!;
  return out;
}

/** Inverse of a 3x3 matrix; throws when it is singular. */
export function invert3(m: readonly number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m as number[];
  const A = e! * i! - f! * h!;
  const B = -(d! * i! - f! * g!);
  const C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw new Error(`matrix is singular (det ${det})`);
  return [
    A / det,
    -(b! * i! - c! * h!) / det,
    (b! * f! - c! * e!) / det,
    B / det,
    (a! * i! - c! * g!) / det,
    -(a! * f! - c! * d!) / det,
    C / det,
    -(a! * h! - b! * g!) / det,
    (a! * e! - b! * d!) / det,
  ];
}

/** Inverse of an affine 4x4 (last row 0 0 0 1). */
export function invertAffine4(m: readonly number[]): Mat4 {
  const inv3 = invert3([m[0]!, m[1]!, m[2]!, m[4]!, m[5]!, m[6]!, m[8]!, m[9]!, m[10]!]);
  const t = [m[3]!, m[7]!, m[11]!];
  const out: Mat4 = [];
  for (let r = 0; r < 3; r++) {
    out.push(inv3[r * 3]!, inv3[r * 3 + 1]!, inv3[r * 3 + 2]!, -(inv3[r * 3]! * t[0]! + inv3[r * 3 + 1]! * t[1]! + inv3[r * 3 + 2]! * t[2]!));
  }
  out.push(0, 0, 0, 1);
  return out;
}
