/**
 * UID generation: 2.25.<UUID as a decimal integer> (PS3.5 B.2), which needs no
 * registered org root and cannot collide in practice.
 */
import { randomUUID } from 'node:crypto';

export function newUid(): string {
  return `2.25.${BigInt('0x' + randomUUID().replace(/-/g, '')).toString()}`;
}

/** True when s is a syntactically valid UID (digits and dots, no leading zeros, at most 64 chars). */
export function isValidUid(s: string): boolean {
  return s.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(s);
}
