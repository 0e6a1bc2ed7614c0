/**
 * Where the tiles of a sliding window go, as nnU-Net places them: evenly
 * spaced starts with a step of at most a fraction of the patch, the first at 0
 * and the last flush with the end, over an image zero-padded (centred) up to
 * the patch where it is smaller. Plain arithmetic without libtorch, so the
 * libtorch sliding window (sliding-window.ts) and the one in a web page
 * (deploy/browser/sliding-window.ts) place their tiles with the same code.
 */

/** Tile start positions along one axis: evenly spaced, first at 0, last flush with the end. */
export function tileStarts(size: number, patch: number, stepFraction: number): number[] {
  if (size <= patch) return [0];
  const steps = Math.ceil((size - patch) / (patch * stepFraction)) + 1;
  const actual = (size - patch) / (steps - 1);
  return Array.from({ length: steps }, (_, i) => Math.round(i * actual));
}

/** Where the tiles of a sliding window over `spatial` go: the padded size, the padding before each axis, and every tile's start. */
export interface TileLayout {
  padded: number[];
  before: number[];
  tiles: number[][];
}

/** The tile layout nnU-Net uses: centred zero padding up to the patch where the image is smaller, tiles at tileStarts per axis. */
export function tileLayout(spatial: number[], patch: number[], stepFraction = 0.5): TileLayout {
  if (patch.length !== spatial.length) {
    throw new Error(`sliding window: patch [${patch}] has ${patch.length} dims, image spatial shape [${spatial}] has ${spatial.length}`);
  }
  const padded = spatial.map((s, i) => Math.max(s, patch[i]!));
  const before = spatial.map((s, i) => Math.floor((padded[i]! - s) / 2));
  const starts = padded.map((s, i) => tileStarts(s, patch[i]!, stepFraction));
  let tiles: number[][] = [[]];
  for (const axisStarts of starts) tiles = tiles.flatMap((t) => axisStarts.map((s) => [...t, s]));
  return { padded, before, tiles };
}
