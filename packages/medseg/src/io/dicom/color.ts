/**
 * DICOM's RecommendedDisplayCIELabValue <-> sRGB. DICOM stores CIELab (D65
 * white) scaled to 0..65535: L* over 0..100, a* and b* over -128..127
 * (PS3.3 C.10.7.1.1). Standard sRGB companding on the RGB side.
 */
const WHITE = [0.95047, 1.0, 1.08883]; // D65

const lin = (c: number) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const gam = (c: number) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
const f = (t: number) => (t > (6 / 29) ** 3 ? Math.cbrt(t) : t / (3 * (6 / 29) ** 2) + 4 / 29);
const finv = (t: number) => (t > 6 / 29 ? t ** 3 : 3 * (6 / 29) ** 2 * (t - 4 / 29));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** sRGB 0..255 -> DICOM scaled CIELab 0..65535. */
export function rgbToDicomLab(rgb: readonly [number, number, number]): [number, number, number] {
  const [r, g, b] = rgb.map((c) => lin(clamp(c, 0, 255) / 255)) as [number, number, number];
  const x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b;
  const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
  const z = 0.0193339 * r + 0.119192 * g + 0.9503041 * b;
  const fx = f(x / WHITE[0]!);
  const fy = f(y / WHITE[1]!);
  const fz = f(z / WHITE[2]!);
  const L = 116 * fy - 16;
  const A = 500 * (fx - fy);
  const B = 200 * (fy - fz);
  return [
    Math.round(clamp((L * 65535) / 100, 0, 65535)),
    Math.round(clamp(((A + 128) * 65535) / 255, 0, 65535)),
    Math.round(clamp(((B + 128) * 65535) / 255, 0, 65535)),
  ];
}

/** DICOM scaled CIELab 0..65535 -> sRGB 0..255 (rounded, clamped to the gamut). */
export function dicomLabToRgb(lab: readonly number[]): [number, number, number] {
  const L = (lab[0]! * 100) / 65535;
  const A = (lab[1]! * 255) / 65535 - 128;
  const B = (lab[2]! * 255) / 65535 - 128;
  const fy = (L + 16) / 116;
  const x = WHITE[0]! * finv(fy + A / 500);
  const y = WHITE[1]! * finv(fy);
  const z = WHITE[2]! * finv(fy - B / 200);
  const r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z;
  const g = -0.969266 * x + 1.8760108 * y + 0.041556 * z;
  const b = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z;
  return [r, g, b].map((c) => Math.round(clamp(gam(clamp(c, 0, 1)) * 255, 0, 255))) as [number, number, number];
}
