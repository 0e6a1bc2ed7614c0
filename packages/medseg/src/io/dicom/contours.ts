/**
 * A binary slice <-> closed planar polygons, in pixel index coordinates
 * (pixel (i, j) is centred on (i, j), so its square spans i-0.5..i+0.5).
 *
 * traceSlice follows the pixel edges between inside and outside (crack
 * following), so the polygons enclose exactly the inside pixels: their area
 * is the pixel count, and a point-in-polygon test on pixel centres gives the
 * mask back. Outer boundaries and hole boundaries run in opposite directions
 * and every loop is closed, so the even-odd rule (the XOR of the contours on
 * a slice, as RTSTRUCT readers combine them) and the non-zero winding rule
 * agree. Where two inside pixels touch only at a corner the loops turn
 * towards the inside, keeping them apart (4-connected inside, 8-connected
 * outside). Points where the boundary runs straight on are dropped.
 *
 * fillPolygons rasterises polygons with the even-odd rule on pixel centres.
 */

/** One closed polygon: x0, y0, x1, y1, ... (the last point joins the first). */
export type Polygon = number[];

const DX = [1, 0, -1, 0]; // E, S, W, N (y grows downwards, along the column direction)
const DY = [0, 1, 0, -1];

/** Boundary polygons of the pixels where inside(i) is true, for an nx x ny slice (i = x + y * nx). */
export function traceSlice(inside: (i: number) => boolean, nx: number, ny: number): Polygon[] {
  const w = nx + 1;
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < nx && y < ny && inside(x + y * nx);
  // Directed edges along pixel sides, inside on the right (clockwise on screen), as bits of their start corner.
  const out = new Uint8Array(w * (ny + 1));
  let any = false;
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      if (!inside(x + y * nx)) continue;
      any = true;
      if (!at(x, y - 1)) out[x + y * w]! |= 1 << 0; // top side, eastwards from (x, y)
      if (!at(x + 1, y)) out[x + 1 + y * w]! |= 1 << 1; // right side, southwards from (x+1, y)
      if (!at(x, y + 1)) out[x + 1 + (y + 1) * w]! |= 1 << 2; // bottom side, westwards from (x+1, y+1)
      if (!at(x - 1, y)) out[x + (y + 1) * w]! |= 1 << 3; // left side, northwards from (x, y+1)
    }
  }
  if (!any) return [];
  const polygons: Polygon[] = [];
  for (let start = 0; start < out.length; start++) {
    while (out[start]) {
      const d0 = 31 - Math.clz32(out[start]! & -out[start]!); // lowest set bit
      out[start]! &= ~(1 << d0);
      const corners = [start];
      let c = start + DX[d0]! + DY[d0]! * w;
      let d = d0;
      for (;;) {
        // The start edge counts as open again at the start corner: taking it closes the loop.
        const bits = out[c]! | (c === start ? 1 << d0 : 0);
        const right = (d + 1) & 3;
        const left = (d + 3) & 3;
        // Right turn first (towards the inside), then straight on, then left.
        const next = bits & (1 << right) ? right : bits & (1 << d) ? d : bits & (1 << left) ? left : -1;
        if (next < 0) throw new Error(`traceSlice: open boundary at corner ${c}`); // every corner has as many edges in as out
        if (c === start && next === d0) break;
        out[c]! &= ~(1 << next);
        corners.push(c);
        c += DX[next]! + DY[next]! * w;
        d = next;
      }
      polygons.push(simplify(corners, w));
    }
  }
  return polygons;
}

/** Corner ids -> pixel index coordinates, without the points where the boundary runs straight on. */
function simplify(corners: number[], w: number): Polygon {
  const n = corners.length;
  const xs = corners.map((c) => c % w);
  const ys = corners.map((c) => Math.floor(c / w));
  const poly: Polygon = [];
  for (let k = 0; k < n; k++) {
    const p = (k + n - 1) % n;
    const q = (k + 1) % n;
    const collinear = (xs[k]! - xs[p]!) * (ys[q]! - ys[k]!) - (ys[k]! - ys[p]!) * (xs[q]! - xs[k]!) === 0;
    if (!collinear) poly.push(xs[k]! - 0.5, ys[k]! - 0.5);
  }
  return poly;
}

/**
 * Even-odd fill of polygons on pixel centres: pixel (i, j) is set when a ray
 * from (i, j) crosses the polygons' edges an odd number of times. XORed into
 * `out` (length nx * ny), so contours filled one call at a time combine the same way.
 */
export function fillPolygons(polygons: Polygon[], nx: number, ny: number, out: Uint8Array = new Uint8Array(nx * ny)): Uint8Array {
  const xs: number[] = [];
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const p of polygons)
    for (let k = 1; k < p.length; k += 2) {
      ymin = Math.min(ymin, p[k]!);
      ymax = Math.max(ymax, p[k]!);
    }
  const j0 = Math.max(0, Math.ceil(ymin));
  const j1 = Math.min(ny - 1, Math.floor(ymax));
  for (let j = j0; j <= j1; j++) {
    xs.length = 0;
    for (const p of polygons) {
      const m = p.length >> 1;
      for (let k = 0; k < m; k++) {
        const x0 = p[2 * k]!;
        const y0 = p[2 * k + 1]!;
        const q = (k + 1) % m;
        const x1 = p[2 * q]!;
        const y1 = p[2 * q + 1]!;
        // Half-open in y: a vertex on the scan line is counted once.
        if (y0 <= j !== y1 <= j) xs.push(x0 + ((j - y0) * (x1 - x0)) / (y1 - y0));
      }
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k]!));
      const to = Math.min(nx - 1, Math.ceil(xs[k + 1]!) - 1);
      for (let i = from; i <= to; i++) out[i + j * nx]! ^= 1;
    }
  }
  return out;
}

/** Signed area of a polygon (shoelace); positive for clockwise on screen (y down). */
export function polygonArea(p: Polygon): number {
  const m = p.length >> 1;
  let a = 0;
  for (let k = 0; k < m; k++) {
    const q = (k + 1) % m;
    a += p[2 * k]! * p[2 * q + 1]! - p[2 * q]! * p[2 * k + 1]!;
  }
  return a / 2;
}
