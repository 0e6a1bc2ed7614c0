/**
 * UID generation: 2.25.<UUID as a decimal integer> (PS3.5 B.2), which needs no
 * registered org root and cannot collide in practice. The UUID comes from Web
 * Crypto (global in Node and in browsers), so the viewer's SEG writer makes
 * its UIDs the same way.
 */
export function newUid(): string {
  return `2.25.${BigInt('0x' + globalThis.crypto.randomUUID().replace(/-/g, '')).toString()}`;
}

/** True when s is a syntactically valid UID (digits and dots, no leading zeros, at most 64 chars). */
export function isValidUid(s: string): boolean {
  return s.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(s);
}
