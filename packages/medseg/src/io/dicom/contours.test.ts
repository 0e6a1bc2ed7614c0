import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fillPolygons, polygonArea, traceSlice, type Polygon } from './contours.ts';

function parse(rows: string[]): { mask: Uint8Array; nx: number; ny: number } {
  const nx = rows[0]!.length;
  const ny = rows.length;
  const mask = new Uint8Array(nx * ny);
  rows.forEach((r, y) => [...r].forEach((c, x) => (mask[x + y * nx] = c === '#' ? 1 : 0)));
  return { mask, nx, ny };
}

/** The polygons give the mask back (even-odd on pixel centres), enclose exactly its area, and keep only corners. */
function roundTrip(mask: Uint8Array, nx: number, ny: number): Polygon[] {
  const polys = traceSlice((i) => mask[i] === 1, nx, ny);
  assert.deepEqual(fillPolygons(polys, nx, ny), mask);
  const pixels = mask.reduce((a, v) => a + v, 0);
  assert.equal(
    polys.reduce((a, p) => a + polygonArea(p), 0),
    pixels,
    'signed areas (holes negative) add up to the pixel count',
  );
  for (const p of polys) {
    const m = p.length / 2;
    assert.ok(m >= 4 && m % 2 === 0, `a rectilinear polygon has an even number (>= 4) of corners, got ${m}`);
    for (let k = 0; k < m; k++) {
      const [a, b, c] = [(k + m - 1) % m, k, (k + 1) % m];
      const cross = (p[2 * b]! - p[2 * a]!) * (p[2 * c + 1]! - p[2 * b + 1]!) - (p[2 * b + 1]! - p[2 * a + 1]!) * (p[2 * c]! - p[2 * b]!);
      assert.notEqual(cross, 0, 'no point where the boundary runs straight on');
    }
  }
  return polys;
}

describe('traceSlice / fillPolygons', () => {
  it('rings with holes, an island in a hole, a bar on the border, and pixels touching only at a corner', () => {
    const { mask, nx, ny } = parse([
      '..........',
      '.#######..',
      '.#.....#..',
      '.#.###.#..',
      '.#.#.#.#..',
      '.#.###.#..',
      '.#.....#.#',
      '.#######.#',
      '#.........',
      '.#........',
    ]);
    const polys = roundTrip(mask, nx, ny);
    // Outer ring and its hole, inner ring and its hole, the bar, and two corner-touching pixels kept apart.
    assert.equal(polys.length, 7);
    const areas = polys.map(polygonArea).sort((a, b) => a - b);
    assert.deepEqual(areas, [-25, -1, 1, 1, 2, 9, 49]);
  });

  it('a component touching itself at a corner, and a full slice', () => {
    roundTrip(parse(['.##', '#.#', '###']).mask, 3, 3);
    const full = roundTrip(new Uint8Array(12).fill(1), 4, 3);
    assert.deepEqual(full, [[-0.5, -0.5, 3.5, -0.5, 3.5, 2.5, -0.5, 2.5]]);
    assert.deepEqual(
      traceSlice(() => false, 4, 3),
      [],
    );
  });

  it('random masks of every density come back exactly', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 60; t++) {
      const [nx, ny] = [5 + (t % 13), 4 + ((t * 7) % 11)];
      const density = 0.15 + (t % 7) * 0.12;
      const mask = Uint8Array.from({ length: nx * ny }, () => (rand() < density ? 1 : 0));
      roundTrip(mask, nx, ny);
    }
  });

  it('fills polygons off the pixel grid by their pixel centres (even-odd)', () => {
    // A triangle and a square with a square hole.
    const tri = [0.2, 0.2, 6.8, 0.2, 0.2, 6.8];
    const out = fillPolygons([tri], 8, 8);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assert.equal(out[x + 8 * y], x >= 1 && y >= 1 && x + y <= 6 ? 1 : 0, `(${x}, ${y})`);
    const ring = fillPolygons(
      [
        [0.5, 0.5, 6.5, 0.5, 6.5, 6.5, 0.5, 6.5],
        [2.5, 2.5, 4.5, 2.5, 4.5, 4.5, 2.5, 4.5],
      ],
      8,
      8,
    );
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) assert.equal(ring[x + 8 * y], x >= 1 && x <= 6 && y >= 1 && y <= 6 && !(x >= 3 && x <= 4 && y >= 3 && y <= 4) ? 1 : 0);
  });
});
