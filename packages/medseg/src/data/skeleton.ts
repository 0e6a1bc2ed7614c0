/**
 * Skeletons of 2D label maps, the targets of the skeleton-recall loss
 * (train/losses.ts), made with each batch in the loader's workers
 * (batch.ts): thin structures such as vessels and cell membranes lose
 * little Dice when a branch breaks, so the loss rewards covering each
 * object's centre line as well.
 *
 * Thinning is Zhang and Suen's parallel algorithm (CACM 1984): two
 * sub-iterations, each removing at once every border pixel with 2..6
 * foreground neighbours, one 0->1 transition around it, and a free
 * east/south (first) or north/west (second) side, until nothing changes.
 * scikit-image's 2D `skeletonize` runs a variant that also strips the
 * staircase pixels this keeps on diagonals; the tubes the loss uses agree
 * closely (skeleton.test.ts). Written here because no npm package thins a
 * Uint8Array label map; it runs on each training batch, so it is a flat loop
 * over the pixels still in the skeleton.
 */

/** The pixels of the 8 neighbours, clockwise from north (P2..P9 in Zhang and Suen's notation), 0 outside the image. */
function neighbours(s: Uint8Array, w: number, h: number, i: number, out: Uint8Array): void {
  const y = (i / w) | 0;
  const x = i - y * w;
  const n = y > 0;
  const so = y < h - 1;
  const we = x > 0;
  const e = x < w - 1;
  out[0] = n ? s[i - w]! : 0;
  out[1] = n && e ? s[i - w + 1]! : 0;
  out[2] = e ? s[i + 1]! : 0;
  out[3] = so && e ? s[i + w + 1]! : 0;
  out[4] = so ? s[i + w]! : 0;
  out[5] = so && we ? s[i + w - 1]! : 0;
  out[6] = we ? s[i - 1]! : 0;
  out[7] = n && we ? s[i - w - 1]! : 0;
}

/** The one-pixel-wide skeleton of a binary h x w mask (row-major, nonzero = foreground). */
export function skeletonize2d(mask: ArrayLike<number>, h: number, w: number): Uint8Array {
  const s = new Uint8Array(h * w);
  let live: number[] = [];
  for (let i = 0; i < h * w; i++) {
    if (mask[i]) {
      s[i] = 1;
      live.push(i);
    }
  }
  const p = new Uint8Array(8);
  const remove: number[] = [];
  for (;;) {
    let changed = false;
    for (const pass of [0, 1]) {
      remove.length = 0;
      for (const i of live) {
        if (!s[i]) continue;
        neighbours(s, w, h, i, p);
        let b = 0;
        let a = 0;
        for (let k = 0; k < 8; k++) {
          b += p[k]!;
          if (!p[k] && p[(k + 1) & 7]) a++;
        }
        if (b < 2 || b > 6 || a !== 1) continue;
        // P2 P4 P6 / P4 P6 P8 in the first pass, P2 P4 P8 / P2 P6 P8 in the second (p[0] = P2 ... p[7] = P9).
        const free = pass === 0 ? !(p[0]! && p[2]! && p[4]!) && !(p[2]! && p[4]! && p[6]!) : !(p[0]! && p[2]! && p[6]!) && !(p[0]! && p[4]! && p[6]!);
        if (free) remove.push(i);
      }
      for (const i of remove) s[i] = 0;
      if (remove.length) changed = true;
    }
    if (!changed) break;
    live = live.filter((i) => s[i]);
  }
  return s;
}

/** The mask grown by one pixel along the four axis directions (a 3x3 cross), as a new array. */
function dilateCross(m: Uint8Array, h: number, w: number): Uint8Array {
  const o = Uint8Array.from(m);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!m[i]) continue;
      if (y > 0) o[i - w] = 1;
      if (y < h - 1) o[i + w] = 1;
      if (x > 0) o[i - 1] = 1;
      if (x < w - 1) o[i + 1] = 1;
    }
  }
  return o;
}

/**
 * Skeleton-recall targets of a batch of 2D label maps [B, H, W]: for each
 * foreground class the skeleton of its mask, widened to a tube by two
 * cross dilations and kept inside the mask (as nnU-Net's Skeleton Recall
 * does), one-hot as [B, K, H, W] with the background channel empty.
 */
export function tubedSkeletons(labels: ArrayLike<number>, shape: [number, number, number], numClasses: number): Uint8Array {
  const [batch, h, w] = shape;
  const plane = h * w;
  const out = new Uint8Array(batch * numClasses * plane);
  const mask = new Uint8Array(plane);
  for (let b = 0; b < batch; b++) {
    for (let k = 1; k < numClasses; k++) {
      let any = false;
      for (let i = 0; i < plane; i++) {
        mask[i] = labels[b * plane + i] === k ? 1 : 0;
        any ||= mask[i] === 1;
      }
      if (!any) continue;
      const tube = dilateCross(dilateCross(skeletonize2d(mask, h, w), h, w), h, w);
      const at = (b * numClasses + k) * plane;
      for (let i = 0; i < plane; i++) if (tube[i] && mask[i]) out[at + i] = 1;
    }
  }
  return out;
}
