/**
 * Secure aggregation by pairwise masking (the masking of Bonawitz et al.
 * 2017): the coordinator learns the sum of the sites' vectors and nothing
 * about any one of them.
 *
 * Each pair of sites i < j agrees on a secret by X25519 Diffie-Hellman over
 * public keys the coordinator relays (it never sees a private key). From the
 * secret and the round number, AES-256-CTR expands a mask of 32-bit words.
 * Site i encodes its vector in fixed point (two's complement modulo 2^32),
 * adds the mask it shares with every later site and subtracts the mask it
 * shares with every earlier one. In the sum over all sites each mask appears
 * once with each sign and cancels, leaving the exact fixed-point sum; one
 * masked vector alone is indistinguishable from uniform random words.
 *
 * A site that drops out after the others masked leaves its masks in the sum:
 * the round is then aggregated again over the sites still present, with
 * masks for that set (the secret-sharing recovery of the full protocol is
 * not implemented).
 */
import { createCipheriv, createHash, diffieHellman, generateKeyPairSync, createPublicKey, type KeyObject } from 'node:crypto';

/** Fixed-point scale: 2^24 steps per unit, about float32's resolution for weights near 1. */
export const FIXED_POINT_SCALE = 2 ** 24;

export class SecureAggregationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecureAggregationError';
  }
}

export interface MaskingKeys {
  /** Sent to the other sites through the coordinator (SPKI DER). */
  publicKey: Buffer;
  privateKey: KeyObject;
}

/** A fresh X25519 key pair for one round. */
export function newMaskingKeys(): MaskingKeys {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKey.export({ type: 'spki', format: 'der' }), privateKey };
}

/** The mask words a pair of sites shares in a round: AES-256-CTR keystream keyed by their DH secret. */
function pairMask(secret: Buffer, round: number, a: string, b: string, words: number): Uint32Array {
  const key = createHash('sha256').update(secret).update(`medseg secure aggregation|round ${round}|${a}|${b}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(words * 4)), cipher.final()]);
  return new Uint32Array(stream.buffer, stream.byteOffset, words).slice();
}

export interface Peer {
  id: string;
  publicKey: Buffer;
}

/**
 * Site `self`'s vector, fixed-point encoded and masked for the sites
 * `peers` (every other site of the round). The round's number of sites
 * bounds each value, so that the sum of all of them cannot wrap around.
 */
export function maskVector(values: ArrayLike<number>, self: { id: string; keys: MaskingKeys }, peers: readonly Peer[], round: number): Uint32Array {
  const n = values.length;
  const sites = peers.length + 1;
  const limit = 2 ** 31 / (sites * FIXED_POINT_SCALE);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || Math.abs(v) >= limit) {
      throw new SecureAggregationError(`value ${v} at ${i} is outside the fixed-point range (|x| < ${limit.toPrecision(4)} for ${sites} sites)`);
    }
    out[i] = Math.round(v * FIXED_POINT_SCALE) >>> 0;
  }
  const ids = new Set([self.id]);
  for (const p of peers) {
    if (ids.has(p.id)) throw new SecureAggregationError(`site id ${p.id} appears twice in the round`);
    ids.add(p.id);
    const secret = diffieHellman({ privateKey: self.keys.privateKey, publicKey: createPublicKey({ key: p.publicKey, format: 'der', type: 'spki' }) });
    const [a, b] = self.id < p.id ? [self.id, p.id] : [p.id, self.id];
    const mask = pairMask(secret, round, a, b, n);
    const add = self.id < p.id;
    for (let i = 0; i < n; i++) out[i] = (add ? out[i]! + mask[i]! : out[i]! - mask[i]!) >>> 0;
  }
  return out;
}

/** The sum of every site's vector from their masked vectors (all sites of the round, in any order). */
export function unmaskSum(masked: readonly Uint32Array[]): Float64Array {
  if (masked.length === 0) throw new SecureAggregationError('no masked vectors to sum');
  const n = masked[0]!.length;
  const acc = new Uint32Array(n);
  for (const m of masked) {
    if (m.length !== n) throw new SecureAggregationError(`masked vectors of different lengths: ${m.length} and ${n}`);
    for (let i = 0; i < n; i++) acc[i] = (acc[i]! + m[i]!) >>> 0;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (acc[i]! | 0) / FIXED_POINT_SCALE;
  return out;
}
