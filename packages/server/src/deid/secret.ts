/**
 * The secret de-identified UIDs and patient pseudonyms are derived from:
 * `<data>/deid-secret`, made (32 random bytes, hex, readable by the owner
 * only) on the first start that needs it. The same secret given to
 * `medseg deidentify --uid-secret-file` de-identifies the source series to
 * the same UIDs, so a de-identified result still references its
 * de-identified source. An operator may put a secret of their own there.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEID_SECRET_FILE = 'deid-secret';

/** Makes the secret file when absent; its path. */
export function ensureDeidSecret(dataDir: string): string {
  const path = join(dataDir, DEID_SECRET_FILE);
  if (!existsSync(path)) {
    try {
      writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return path;
}

/** The secret (the file's trimmed text); throws when the file is missing or empty. */
export function readDeidSecret(dataDir: string): string {
  const secret = readFileSync(join(dataDir, DEID_SECRET_FILE), 'utf8').trim();
  if (!secret) throw new Error(`${join(dataDir, DEID_SECRET_FILE)} is empty`);
  return secret;
}
