/**
 * The native hook's token: 32 random bytes as 64 hex digits in `<dataDir>/native-hook.token`, readable by
 * the plugin's account only (mode 0600 on POSIX; on Windows the data folder's ACL, set by install.ps1).
 * The hook library reads it from there and presents it first on every connection, so only a program that
 * can read the plugin's data folder — the register software configured for it — can submit orders or read
 * results. Kept across restarts (the register's config points at the file, not at a value); a file that
 * does not hold a token is replaced.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurably } from '../durable-file';

export const TOKEN_FILE_NAME = 'native-hook.token';
const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** Reads the token in `dir`, or writes a new one; returns it. */
export async function ensureHookToken(dir: string): Promise<{ token: string; file: string }> {
  const file = path.join(dir, TOKEN_FILE_NAME);
  await fs.mkdir(dir, { recursive: true });
  try {
    const token = (await fs.readFile(file, 'utf8')).trim().toLowerCase();
    if (TOKEN_PATTERN.test(token)) {
      await fs.chmod(file, 0o600).catch(() => undefined);
      return { token, file };
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomBytes(32).toString('hex');
  await writeFileDurably(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}

/**
 * Compares a presented token with the real one in constant time: both are hashed first, so neither the
 * length nor the first differing character shows in the time taken.
 */
export function tokenMatches(presented: string, token: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(token, 'utf8').digest();
  return timingSafeEqual(a, b);
}
